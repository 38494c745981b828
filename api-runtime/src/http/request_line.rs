//! URLs as curl sends them. PostgREST's own documentation writes
//! `in.("a,b",c)` and `?select=a->>b` without percent-encoding and curl
//! sends them so, but the HTTP parser refuses `"`, `<` and `>` in a
//! request target with an empty 400. The listener passes each request line
//! through [`RequestLine`] first, which percent-encodes those three bytes
//! in the target (and nothing else, nowhere else): `%22`, `%3C`, `%3E` mean
//! the same to the query parser.

/// Where the reader is in the request line of the head being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the method's first letter.
    Start,
    /// In the method: upper-case letters up to the first space.
    Method,
    /// In the target, up to the next space.
    Target,
    /// In the protocol version, up to the end of the line.
    Version,
    /// Past the request line (headers, body): bytes pass untouched.
    Done,
}

/// The request line of one request head, fed as it arrives.
#[derive(Debug, Clone)]
pub(crate) struct RequestLine {
    state: State,
}

impl RequestLine {
    /// At the start of a request head.
    pub fn new() -> RequestLine {
        RequestLine { state: State::Start }
    }

    /// Whether the request line has been read: nothing more will change.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// `bytes` (the next bytes of the head) with `"`, `<` and `>` of the
    /// target percent-encoded; `None` when they need no change (no copy
    /// then). Anything that does not start like a request line (an
    /// upper-case method, then a space) is left alone.
    pub fn encode(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        let mut i = 0;
        // Runs of bytes that need no change are found at once, not byte by
        // byte: this reads every request's head.
        while i < bytes.len() {
            let byte = bytes[i];
            let encode = match self.state {
                State::Done => break,
                State::Start | State::Method => {
                    self.state = match (self.state, byte) {
                        (_, b'A'..=b'Z') => State::Method,
                        (State::Method, b' ') => State::Target,
                        _ => State::Done,
                    };
                    false
                }
                State::Target => {
                    let plain = bytes[i..]
                        .iter()
                        .position(|b| matches!(b, b' ' | b'\r' | b'\n' | b'"' | b'<' | b'>'))
                        .unwrap_or(bytes.len() - i);
                    if plain > 0 {
                        if let Some(out) = &mut out {
                            out.extend_from_slice(&bytes[i..i + plain]);
                        }
                        i += plain;
                        continue;
                    }
                    match byte {
                        b' ' => self.state = State::Version,
                        b'\r' | b'\n' => self.state = State::Done,
                        _ => {}
                    }
                    matches!(byte, b'"' | b'<' | b'>')
                }
                State::Version => {
                    if byte == b'\n' {
                        self.state = State::Done;
                    }
                    false
                }
            };
            match (&mut out, encode) {
                (Some(out), false) => out.push(byte),
                (out, true) => {
                    let out = out.get_or_insert_with(|| {
                        let mut copy = Vec::with_capacity(bytes.len() + 8);
                        copy.extend_from_slice(&bytes[..i]);
                        copy
                    });
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    out.extend_from_slice(&[b'%', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xF)]]);
                }
                (None, false) => {}
            }
            i += 1;
        }
        if let Some(out) = &mut out {
            out.extend_from_slice(&bytes[i..]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::RequestLine;

    fn encoded(parts: &[&str]) -> String {
        let mut line = RequestLine::new();
        parts
            .iter()
            .map(|p| match line.encode(p.as_bytes()) {
                Some(bytes) => String::from_utf8(bytes).unwrap(),
                None => p.to_string(),
            })
            .collect()
    }

    #[test]
    fn quotes_and_angle_brackets_of_the_target_are_percent_encoded() {
        assert_eq!(
            encoded(&["GET /items?name=in.(\"a,b\",c)&x=eq.<1> HTTP/1.1\r\nX-Note: \"kept\"\r\n\r\n"]),
            "GET /items?name=in.(%22a,b%22,c)&x=eq.%3C1%3E HTTP/1.1\r\nX-Note: \"kept\"\r\n\r\n"
        );
        // The line may arrive in pieces.
        assert_eq!(
            encoded(&["GE", "T /a?b=\"", "c\" HTT", "P/1.1\r\n", "H: \"x\"\r\n\r\n"]),
            "GET /a?b=%22c%22 HTTP/1.1\r\nH: \"x\"\r\n\r\n"
        );
    }

    #[test]
    fn nothing_past_the_request_line_changes() {
        let head = "POST /items HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"a\":\"<\"}";
        assert_eq!(encoded(&[head]), head);
        let mut line = RequestLine::new();
        assert_eq!(line.encode(b"GET /ok HTTP/1.1\r\n"), None);
        assert!(line.is_done());
        assert_eq!(line.encode(b"GET /\"later\" HTTP/1.1\r\n"), None, "a done line changes nothing");
    }

    #[test]
    fn what_does_not_start_like_a_request_line_is_left_alone() {
        for bytes in ["{\"a\": \"<b>\"} x", " GET /\" HTTP/1.1", "get /\" HTTP/1.1", "\"quoted\" <x>"] {
            assert_eq!(RequestLine::new().encode(bytes.as_bytes()), None, "{bytes}");
        }
    }
}
