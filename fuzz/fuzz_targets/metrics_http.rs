//! The metrics listener's HTTP over arbitrary bytes: a status line for every request
//! (200 with the exposition for GET /metrics, 400, 404, 405 or 431), never a panic,
//! answered by a control loop over the stand-in dataplane.
#![no_main]

use control::metrics::MetricsHttp;
use control::serve::{Protocol, Turn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let request = &input[..input.len().min(MetricsHttp::LIMIT)];
    let mut protocol = MetricsHttp::new(dsrlb_fuzz::asker().clone());
    for ended in [false, true] {
        if let Turn::Respond(response) = protocol.turn(request, ended) {
            assert!(
                response.starts_with(b"HTTP/1.1 "),
                "{:?}",
                String::from_utf8_lossy(&response)
            );
            return;
        }
    }
    panic!("no response to a request whose sender closed");
});
