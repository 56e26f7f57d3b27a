//! Store keys of log groups and streams. Names may contain '/' (group and stream names) and '%' (stream names), so
//! every key component is percent-encoded for those two characters: a component never contains '/', and the
//! encoding of a prefix is a prefix of the encoding, so prefix scans stay exact.
//!
//! `/logs/{region}/groups/{group}` and `/logs/{region}/streams/{group}/{stream}`.

/// Every key of this crate starts here.
pub(crate) const ROOT: &str = "/logs/";

pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn dec(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("%25") => out.push('%'),
            Some("%2F") => out.push('/'),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

pub(crate) fn groups_prefix(region: &str) -> String {
    format!("{ROOT}{}/groups/", enc(region))
}

pub(crate) fn group_key(region: &str, group: &str) -> String {
    format!("{}{}", groups_prefix(region), enc(group))
}

/// The prefix of every stream of `group`.
pub(crate) fn streams_prefix(region: &str, group: &str) -> String {
    format!("{ROOT}{}/streams/{}/", enc(region), enc(group))
}

pub(crate) fn stream_key(region: &str, group: &str, stream: &str) -> String {
    format!("{}{}", streams_prefix(region, group), enc(stream))
}

/// What a key of this crate names, with its components decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParsedKey {
    Group {
        region: String,
        group: String,
    },
    Stream {
        region: String,
        group: String,
        stream: String,
    },
}

pub(crate) fn parse(key: &str) -> Option<ParsedKey> {
    let rest = key.strip_prefix(ROOT)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [region, "groups", group] => Some(ParsedKey::Group {
            region: dec(region)?,
            group: dec(group)?,
        }),
        [region, "streams", group, stream] => Some(ParsedKey::Stream {
            region: dec(region)?,
            group: dec(group)?,
            stream: dec(stream)?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_and_percents_round_trip() {
        for name in ["/ecs/web", "a%2Fb", "%", "plain", "a/b/c/", ""] {
            assert_eq!(dec(&enc(name)).as_deref(), Some(name));
            assert!(!enc(name).contains('/'));
        }
        assert_eq!(dec("%zz"), None);
        assert_eq!(dec("%2"), None);
    }

    #[test]
    fn stream_keys_stay_under_their_group() {
        let a = stream_key("us-east-1", "/ecs/a", "web/1");
        assert!(a.starts_with(&streams_prefix("us-east-1", "/ecs/a")));
        // A group whose name extends another's does not share its streams prefix.
        assert!(!stream_key("us-east-1", "/ecs/ab", "x")
            .starts_with(&streams_prefix("us-east-1", "/ecs/a")));
        assert!(!stream_key("us-east-1", "/ecs/a/b", "x")
            .starts_with(&streams_prefix("us-east-1", "/ecs/a")));
        // The encoding of a name prefix is a prefix of the encoded key.
        assert!(a.starts_with(&format!(
            "{}{}",
            streams_prefix("us-east-1", "/ecs/a"),
            enc("web/")
        )));
    }

    #[test]
    fn parses_keys() {
        assert_eq!(
            parse(&group_key("eu-west-1", "/a/b")),
            Some(ParsedKey::Group {
                region: "eu-west-1".into(),
                group: "/a/b".into()
            })
        );
        assert_eq!(
            parse(&stream_key("eu-west-1", "/a/b", "s/%1")),
            Some(ParsedKey::Stream {
                region: "eu-west-1".into(),
                group: "/a/b".into(),
                stream: "s/%1".into()
            })
        );
        assert_eq!(parse("/ecs/clusters/x"), None);
        assert_eq!(parse("/logs/r/other/x"), None);
    }
}
