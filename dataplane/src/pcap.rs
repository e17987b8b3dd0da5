//! Classic libpcap files (microsecond, Ethernet): enough to feed `net_pcap` and read
//! back what it recorded.

use std::io::{self, Read, Write};

const MAGIC: u32 = 0xa1b2_c3d4;
const LINKTYPE_ETHERNET: u32 = 1;

pub fn write<W: Write>(mut out: W, frames: &[Vec<u8>]) -> io::Result<()> {
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&MAGIC.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&0i32.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    out.write_all(&header)?;
    for (i, frame) in frames.iter().enumerate() {
        let mut record = Vec::with_capacity(16 + frame.len());
        record.extend_from_slice(&(i as u32 / 1_000_000).to_le_bytes());
        record.extend_from_slice(&(i as u32 % 1_000_000).to_le_bytes());
        record.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        record.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        record.extend_from_slice(frame);
        out.write_all(&record)?;
    }
    out.flush()
}

/// Reads every frame of a little- or big-endian microsecond/nanosecond pcap file.
pub fn read<R: Read>(input: R) -> io::Result<Vec<Vec<u8>>> {
    let mut frames = Vec::new();
    for_each_frame(input, |frame| frames.push(frame.to_vec()))?;
    Ok(frames)
}

/// Frames in a pcap file (what `net_pcap` with `infinite_rx` holds in mbufs).
pub fn count<R: Read>(input: R) -> io::Result<usize> {
    let mut frames = 0;
    for_each_frame(input, |_| frames += 1)?;
    Ok(frames)
}

fn for_each_frame<R: Read>(mut input: R, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("pcap: {what}"));
    if bytes.len() < 24 {
        return Err(bad("shorter than its header"));
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let little = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(bad("not a pcap file")),
    };
    let u32_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32_at(at + 8) as usize;
        let start = at + 16;
        let end = start
            .checked_add(caplen)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad("truncated record"))?;
        each(&bytes[start..end]);
        at = end;
    }
    if at != bytes.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let frames = vec![vec![1u8; 60], vec![2u8; 1514], vec![]];
        let mut file = Vec::new();
        super::write(&mut file, &frames).unwrap();
        assert_eq!(file.len(), 24 + 3 * 16 + 60 + 1514);
        assert_eq!(super::read(&file[..]).unwrap(), frames);
        assert_eq!(super::count(&file[..]).unwrap(), 3);
        assert!(super::read(&file[..file.len() - 1]).is_err());
    }
}
