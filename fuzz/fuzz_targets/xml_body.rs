//! An XML request body: bytes → `xml::from_xml`; whatever it accepts must be written by
//! `xml::to_xml` (compact and indented) and read back to the same JSON. Bytes that are
//! JSON go the other way: what `to_xml` writes must read back, and write again as the
//! same XML (the JSON itself may differ only where `to_xml` declares the XHTML namespace
//! a narrative lacked). Nothing may panic, whatever the bytes.

#![no_main]

use ember_fhir::xml::{from_xml, to_xml};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MAX_DEPTH: usize = 64;

fuzz_target!(|data: &[u8]| {
    if let Ok(json) = from_xml(data, MAX_DEPTH) {
        for pretty in [false, true] {
            let xml = to_xml(&json, pretty).expect("what was read can be written");
            let back = from_xml(xml.as_bytes(), MAX_DEPTH).expect("what was written can be read");
            assert_eq!(back, json, "the round trip changed the resource");
        }
    }
    if let Ok(json) = serde_json::from_slice::<Value>(data) {
        if let Ok(xml) = to_xml(&json, false) {
            let back = from_xml(xml.as_bytes(), 256).expect("what was written can be read");
            let again = to_xml(&back, false).expect("what was read can be written");
            assert_eq!(again, xml, "the round trip changed the resource");
        }
    }
});
