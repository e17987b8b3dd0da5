//! The control socket over arbitrary bytes, as one connection sends them: framed and
//! parsed by the socket's protocol, then answered by a control loop over the
//! stand-in dataplane (show, drain/enable/disable, reload, metrics). Every answer is
//! one JSON line.
#![no_main]

use control::ctl::ControlProtocol;
use control::serve::{Protocol, Turn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let request = &input[..input.len().min(ControlProtocol::LIMIT)];
    let mut protocol = ControlProtocol::new(dsrlb_fuzz::asker().clone());
    for ended in [false, true] {
        if let Turn::Respond(reply) = protocol.turn(request, ended) {
            let line = reply.strip_suffix(b"\n").expect("a reply is one line");
            assert!(!line.contains(&b'\n'), "a reply is one line");
            let _: serde_json::Value = serde_json::from_slice(line).expect("JSON");
            return;
        }
    }
    panic!("no reply to a request whose sender closed");
});
