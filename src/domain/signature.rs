//! Verifying a secret-scanning partner's alert: an ECDSA P-256 / SHA-256 signature (ASN.1 DER,
//! base64) over the raw body bytes, by a public key published as a PEM `SubjectPublicKeyInfo`
//! (GitHub's format). Pure: the keys are fetched elsewhere.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The DER header of a P-256 `SubjectPublicKeyInfo` (id-ecPublicKey, prime256v1, then a BIT
/// STRING holding the 65-byte uncompressed point).
const P256_SPKI_HEADER: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A P-256 public key, as the uncompressed point `ring` verifies with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P256Key(Vec<u8>);

impl P256Key {
    /// From a PEM `PUBLIC KEY`; `None` for anything that is not a P-256 key.
    pub fn from_pem(pem: &str) -> Option<P256Key> {
        let body: String = pem.lines().map(str::trim).filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).ok()?;
        Self::from_spki_der(&der)
    }

    pub fn from_spki_der(der: &[u8]) -> Option<P256Key> {
        (der.len() == P256_SPKI_HEADER.len() + 65 && der.starts_with(&P256_SPKI_HEADER) && der[26] == 0x04)
            .then(|| P256Key(der[P256_SPKI_HEADER.len()..].to_vec()))
    }

    /// The `SubjectPublicKeyInfo` of an uncompressed point (for tests and key documents).
    pub fn spki_der(&self) -> Vec<u8> {
        [&P256_SPKI_HEADER[..], &self.0].concat()
    }

    pub fn from_point(point: &[u8]) -> Option<P256Key> {
        (point.len() == 65 && point[0] == 0x04).then(|| P256Key(point.to_vec()))
    }

    /// Whether `signature_b64` (base64 of an ASN.1 DER ECDSA signature) signs `body`.
    pub fn verifies(&self, signature_b64: &str, body: &[u8]) -> bool {
        let Ok(signature) = STANDARD.decode(signature_b64.trim()) else {
            return false;
        };
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &self.0)
            .verify(body, &signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    fn pair() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
    }

    #[test]
    fn a_signature_verifies_over_exactly_the_signed_bytes() {
        let pair = pair();
        let key = P256Key::from_point(pair.public_key().as_ref()).unwrap();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(key.spki_der())
        );
        assert_eq!(P256Key::from_pem(&pem), Some(key.clone()));
        let body = br#"[{"token":"x","type":"t","url":"u","source":"s"}]"#;
        let sig = STANDARD.encode(pair.sign(&SystemRandom::new(), body).unwrap().as_ref());
        assert!(key.verifies(&sig, body));
        assert!(!key.verifies(&sig, b"[{\"token\":\"y\"}]"), "another body");
        assert!(!key.verifies(&sig, &[body.as_slice(), b" "].concat()), "one byte more");
        assert!(!key.verifies("not base64!", body));
        assert!(!key.verifies("", body));
        let other = P256Key::from_point(super::tests::pair().public_key().as_ref()).unwrap();
        assert!(!other.verifies(&sig, body), "another key");
    }

    #[test]
    fn only_p256_public_keys_are_accepted() {
        assert_eq!(
            P256Key::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            None
        );
        assert_eq!(P256Key::from_pem("garbage"), None);
        assert_eq!(P256Key::from_spki_der(&[0u8; 91]), None);
    }
}
