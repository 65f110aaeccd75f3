//! sops' value codec: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM with a
//! 32-byte nonce, the value's key path (`a:b:`) as additional data.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use super::scalar::Value;
use super::timestamp::Timestamp;

/// The data key that encrypts every value of a file.
pub type DataKey = Zeroizing<[u8; 32]>;

type Aes256Gcm32 = AesGcm<Aes256, U32>;

/// Go's `base64.StdEncoding`: padded, lenient about trailing bits, ignores CR and LF.
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// What a sealed value opens to: a tree value, or the text of an encrypted comment.
#[derive(Debug)]
pub enum Opened {
    Value(Value),
    Comment(Zeroizing<String>),
}

/// Why a value did not open; none of these carries any plaintext.
#[derive(Debug, PartialEq)]
pub enum OpenError {
    /// Not in sops' `ENC[...]` format.
    NotSealed,
    /// Authentication failed: wrong key, wrong key path, or altered bytes.
    Forged,
    /// Decrypted, but not as its declared type (or a type sops does not write in YAML).
    BadType(String),
}

/// Opens `sealed` with the data key, `aad` being the value's key path.
pub fn open(key: &DataKey, sealed: &str, aad: &str) -> Result<Opened, OpenError> {
    if sealed.is_empty() {
        // sops leaves empty strings unencrypted and reads them back as such.
        return Ok(Opened::Value(Value::Str(Zeroizing::new(String::new()))));
    }
    let [data, iv, tag, kind] = split_sealed(sealed).ok_or(OpenError::NotSealed)?;
    // Go's decoder skips CR (and LF, which cannot occur within the first line).
    let decode = |text: &str| {
        GO_STD_BASE64
            .decode(text.replace('\r', ""))
            .map_err(|_| OpenError::NotSealed)
    };
    let (data, iv, tag) = (decode(data)?, decode(iv)?, decode(tag)?);
    if iv.len() != 32 {
        // sops always writes 32-byte nonces; Go would refuse any other under this key.
        return Err(OpenError::Forged);
    }
    let mut message = data;
    message.extend_from_slice(&tag);
    let cipher = Aes256Gcm32::new_from_slice(key.as_slice()).map_err(|_| OpenError::Forged)?;
    let payload = Payload {
        msg: &message,
        aad: aad.as_bytes(),
    };
    let plain = Zeroizing::new(
        cipher
            .decrypt(Nonce::<U32>::from_slice(&iv), payload)
            .map_err(|_| OpenError::Forged)?,
    );
    typed(plain, kind)
}

/// sops' pattern `^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]` with Go's
/// leftmost-first greedy matching (each group as long as the rest still matches), without
/// a regex engine: this runs once per value, a thousand files' worth per `status --all`.
fn split_sealed(sealed: &str) -> Option<[&str; 4]> {
    let body = sealed.strip_prefix("ENC[AES256_GCM,data:")?;
    // `.` does not match a line break: the match ends on the first line.
    let line = body.split('\n').next().unwrap_or_default();
    let cuts = |text: &'_ str, marker: &str| -> Vec<usize> {
        text.rmatch_indices(marker).map(|(i, _)| i).collect()
    };
    for iv_at in cuts(line, ",iv:") {
        let (data, after_iv) = (&line[..iv_at], &line[iv_at + 4..]);
        for tag_at in cuts(after_iv, ",tag:") {
            let (iv, after_tag) = (&after_iv[..tag_at], &after_iv[tag_at + 5..]);
            for type_at in cuts(after_tag, ",type:") {
                let (tag, after_type) = (&after_tag[..type_at], &after_tag[type_at + 6..]);
                let Some(end) = after_type.rfind(']') else {
                    continue;
                };
                let kind = &after_type[..end];
                if [data, iv, tag, kind].iter().all(|g| !g.is_empty()) {
                    return Some([data, iv, tag, kind]);
                }
            }
        }
    }
    None
}

fn typed(plain: Zeroizing<Vec<u8>>, kind: &str) -> Result<Opened, OpenError> {
    let bad = || OpenError::BadType(kind.to_string());
    if kind == "bytes" {
        return Err(bad());
    }
    // Checked before copying, so a failed conversion leaves no unwiped copy behind.
    let text = Zeroizing::new(std::str::from_utf8(&plain).map_err(|_| bad())?.to_string());
    let value = match kind {
        "str" => Value::Str(text),
        "comment" => return Ok(Opened::Comment(text)),
        "int" => Value::Int(text.parse().map_err(|_| bad())?),
        "float" => Value::Float(parse_go_float(&text).ok_or_else(bad)?),
        "bool" => Value::Bool(parse_go_bool(&text).ok_or_else(bad)?),
        "time" => Value::Time(Timestamp::parse_rfc3339(&text).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    Ok(Opened::Value(value))
}

/// `strconv.ParseFloat` for what sops writes (`FormatFloat(f, 'f', -1, 64)`).
fn parse_go_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if text
            .bytes()
            .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c)) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
}

/// `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A value sealed by sops 3.11 under the all-zero data key, path `a:`.
    fn seal(plain: &[u8], aad: &str, kind: &str) -> String {
        use aes_gcm::aead::AeadInPlace;
        let cipher = Aes256Gcm32::new_from_slice(&[0u8; 32]).unwrap();
        let iv = [7u8; 32];
        let mut buf = plain.to_vec();
        let tag = cipher
            .encrypt_in_place_detached(Nonce::<U32>::from_slice(&iv), aad.as_bytes(), &mut buf)
            .unwrap();
        let b = |x: &[u8]| base64::engine::general_purpose::STANDARD.encode(x);
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
            b(&buf),
            b(&iv),
            b(&tag)
        )
    }

    #[test]
    fn splits_like_sops_greedy_pattern() {
        assert_eq!(
            split_sealed("ENC[AES256_GCM,data:d,iv:i,tag:t,type:str]"),
            Some(["d", "i", "t", "str"])
        );
        // Greedy: the first group takes everything up to the last `,iv:` that still fits.
        assert_eq!(
            split_sealed("ENC[AES256_GCM,data:a,iv:b,iv:c,tag:t,type:x]]"),
            Some(["a,iv:b", "c", "t", "x]"])
        );
        assert_eq!(
            split_sealed("ENC[AES256_GCM,data:,iv:i,tag:t,type:s]"),
            None
        );
        assert_eq!(
            split_sealed("ENC[AES256_GCM,data:d,iv:i,tag:t,type:s"),
            None
        );
    }

    #[test]
    fn opens_typed_values_and_rejects_a_moved_one() {
        let key = Zeroizing::new([0u8; 32]);
        let sealed = seal(b"511", "a:", "int");
        assert!(matches!(
            open(&key, &sealed, "a:"),
            Ok(Opened::Value(Value::Int(511)))
        ));
        assert_eq!(open(&key, &sealed, "b:").unwrap_err(), OpenError::Forged);
        assert_eq!(
            open(&key, "ENC[nope]", "a:").unwrap_err(),
            OpenError::NotSealed
        );
        let comment = seal(b" hi", "", "comment");
        assert!(matches!(open(&key, &comment, ""), Ok(Opened::Comment(c)) if c.as_str() == " hi"));
        assert!(matches!(
            open(&key, &seal(b"True", "a:", "bool"), "a:"),
            Ok(Opened::Value(Value::Bool(true)))
        ));
    }
}
