//! A growable byte buffer for plaintext whose every allocation is wiped: a plain
//! `Vec` would leave a copy behind in freed memory each time it grows.

use zeroize::Zeroizing;

pub struct SecretBuf(Zeroizing<Vec<u8>>);

impl SecretBuf {
    pub fn with_capacity(capacity: usize) -> SecretBuf {
        SecretBuf(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    pub fn push(&mut self, bytes: &[u8]) {
        let needed = self.0.len() + bytes.len();
        if needed > self.0.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(2 * self.0.capacity())));
            bigger.extend_from_slice(&self.0);
            // The old allocation is zeroized when it is dropped here.
            self.0 = bigger;
        }
        self.0.extend_from_slice(bytes);
    }

    pub fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_past_its_capacity() {
        let mut buf = SecretBuf::with_capacity(2);
        buf.push(b"abc");
        buf.push(b"defgh");
        assert_eq!(buf.into_inner().as_slice(), b"abcdefgh");
    }
}
