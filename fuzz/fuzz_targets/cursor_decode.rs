//! The sync cursor decoder, which reads a string every device sends back: it must never
//! panic, accept only what this server signed, and give back exactly what was encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xuncha::sync::cursor::{Cursor, seal};

const KEY: &[u8] = b"fuzzing-key";

fuzz_target!(|data: &[u8]| {
    // The text as a device could send it: anything, signed or not.
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(c) = Cursor::decode(s, KEY)
    {
        assert_eq!(Cursor::decode(&c.encode(KEY), KEY).as_ref(), Ok(&c));
        assert!(Cursor::decode(s, b"another-key").is_err());
    }
    // Any payload behind a valid signature: the JSON stage must hold up on its own.
    let sealed = seal(data, KEY);
    if let Ok(c) = Cursor::decode(&sealed, KEY) {
        assert_eq!(Cursor::decode(&c.encode(KEY), KEY), Ok(c));
    }
});
