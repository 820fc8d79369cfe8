//! DSSE envelopes (the Dead Simple Signing Envelope of in-toto attestations and cosign):
//! `{"payloadType": …, "payload": BASE64, "signatures": [...]}`. A blob that is one says
//! little as it is stored; its payload, decoded, is the attestation people came to read.
//!
//! - An envelope is recognised by its shape alone: a `payloadType` string, a `payload`
//!   string that is standard base64, and a `signatures` array. Nothing is verified: the
//!   page shows what the envelope says, not that anyone signed it.
//! - The payload is decoded whole, so the caller bounds the blob it reads first.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

/// A DSSE envelope, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// What the payload is, e.g. `application/vnd.in-toto+json`.
    pub payload_type: String,
    /// The payload's bytes, decoded from base64.
    pub payload: Vec<u8>,
    /// How many signatures the envelope carries (none checked).
    pub signatures: usize,
}

impl Envelope {
    /// The payload as JSON, when it is JSON (in-toto statements are).
    pub fn payload_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.payload).ok()
    }
}

/// `value` read as a DSSE envelope; `None` when it does not have an envelope's shape
/// or its payload is not base64.
pub fn envelope(value: &Value) -> Option<Envelope> {
    let object = value.as_object()?;
    let payload_type = object.get("payloadType")?.as_str()?.to_owned();
    let signatures = object.get("signatures")?.as_array()?.len();
    let payload = STANDARD.decode(object.get("payload")?.as_str()?).ok()?;
    Some(Envelope { payload_type, payload, signatures })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_toto_envelope_gives_its_statement() {
        let statement =
            r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1"}"#;
        let value = serde_json::json!({
            "payloadType": "application/vnd.in-toto+json",
            "payload": STANDARD.encode(statement),
            "signatures": [{"keyid": "", "sig": "MEUC"}],
        });
        let envelope = envelope(&value).expect("an envelope");
        assert_eq!(envelope.payload_type, "application/vnd.in-toto+json");
        assert_eq!(envelope.signatures, 1);
        assert_eq!(envelope.payload_json().unwrap()["predicateType"], "https://slsa.dev/provenance/v1");
    }

    #[test]
    fn other_json_is_no_envelope() {
        for value in [
            serde_json::json!({"payloadType": "x", "payload": "aGk="}),
            serde_json::json!({"payloadType": "x", "payload": "not base64!", "signatures": []}),
            serde_json::json!({"payloadType": 1, "payload": "aGk=", "signatures": []}),
            serde_json::json!(["payloadType"]),
        ] {
            assert_eq!(envelope(&value), None, "{value}");
        }
    }

    #[test]
    fn a_payload_that_is_not_json_is_kept_as_bytes() {
        let value =
            serde_json::json!({"payloadType": "text/plain", "payload": STANDARD.encode("hi"), "signatures": []});
        let envelope = envelope(&value).unwrap();
        assert_eq!(envelope.payload, b"hi");
        assert_eq!(envelope.payload_json(), None);
    }
}
