//! `application/x-www-form-urlencoded` decoding, strict: botocore encodes its body with Python's `urlencode`
//! (`quote_plus`, so a space is `+`), and anything that is not valid percent-encoding of UTF-8 is refused rather
//! than guessed at.

/// Why a form could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("Invalid percent-encoding in '{0}'")]
    Percent(String),
    #[error("The parameters are not valid UTF-8 after percent-decoding: '{0}'")]
    Utf8(String),
}

/// Decodes `a=1&b=x+y&c` into `[("a", "1"), ("b", "x y"), ("c", "")]`, in order. Empty segments (`a=1&&b=2`) are
/// skipped.
pub fn parse_form(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    input
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// Whether the query string of a URL carries a parameter named `name` (a cheap check made before routing).
pub(crate) fn has_param(query: &str, name: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.split_once('=').map_or(pair, |(n, _)| n) == name)
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    // Shown in errors as the client sent it (it is ASCII or close to it; lossy is fine for a message).
    let shown = || String::from_utf8_lossy(raw).into_owned();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let byte = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| FormError::Percent(shown()))?;
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| FormError::Utf8(shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        parse_form(s.as_bytes()).unwrap()
    }

    fn p(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn decodes_pairs_in_order() {
        assert_eq!(
            pairs("Action=DescribeLoadBalancers&Names.member.1=a+b&Subnets=&Flag"),
            vec![
                p("Action", "DescribeLoadBalancers"),
                p("Names.member.1", "a b"),
                p("Subnets", ""),
                p("Flag", ""),
            ]
        );
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs("&&a=1&"), vec![p("a", "1")]);
    }

    #[test]
    fn percent_decodes_names_and_values() {
        assert_eq!(
            pairs("Tags.member.1.Value=caf%C3%A9%20%2B%26%3D&K%2Ey=a=b"),
            vec![p("Tags.member.1.Value", "café +&="), p("K.y", "a=b")]
        );
        // Lower-case hex is valid too.
        assert_eq!(pairs("a=%c3%a9"), vec![p("a", "é")]);
    }

    #[test]
    fn refuses_bad_percent_encoding_and_invalid_utf8() {
        assert_eq!(parse_form(b"a=%zz"), Err(FormError::Percent("%zz".into())));
        assert_eq!(parse_form(b"a=%4"), Err(FormError::Percent("%4".into())));
        assert_eq!(parse_form(b"a=%"), Err(FormError::Percent("%".into())));
        assert_eq!(parse_form(b"a=%+1"), Err(FormError::Percent("%+1".into())));
        assert!(matches!(parse_form(b"a=%FF"), Err(FormError::Utf8(_))));
        assert!(matches!(parse_form(b"a=\xff"), Err(FormError::Utf8(_))));
    }

    #[test]
    fn finds_a_parameter_in_a_query_string() {
        assert!(has_param("Action=X&Version=1", "Action"));
        assert!(has_param("a=1&Action", "Action"));
        assert!(!has_param("NoAction=1", "Action"));
        assert!(!has_param("", "Action"));
    }
}
