//! The XML of Query responses, written by hand: a JSON value becomes elements (objects their members, arrays
//! `<member>` lists (EC2: `<item>`), scalars text, nulls nothing), and the success and error documents wrap it, in
//! the Query protocol's form or EC2's.

use serde_json::Value;

use crate::AwsError;

/// Appends `text` escaped for element content and attribute values. Characters XML 1.0 cannot carry at all (most
/// C0 controls, U+FFFE, U+FFFF; not even as references) become U+FFFD; `\r` is written as a reference so that
/// the parser's newline normalisation keeps it.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// Whether `name` can be an element name. Member names come from the service's types, but a map serialised as
/// an object could carry a client's key; such an element is left out rather than breaking the document.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    let start = |c: char| c.is_alphabetic() || c == '_';
    chars.next().is_some_and(start)
        && chars.all(|c| start(c) || c.is_ascii_digit() || c == '-' || c == '.')
}

/// How a service's answers are written: the Query protocol's documents, or EC2's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlStyle {
    /// `<{Action}Result>` inside the response, lists of `<member>`, `<ErrorResponse>` errors.
    Query,
    /// The members straight inside the response after `<requestId>`, lists of `<item>`, `<Response><Errors>`
    /// errors (the `ec2` protocol).
    Ec2,
}

impl XmlStyle {
    fn list_item(self) -> &'static str {
        match self {
            XmlStyle::Query => "member",
            XmlStyle::Ec2 => "item",
        }
    }
}

/// Appends `<name>content</name>` for `value`; nothing for null; `<name/>` when the content is empty.
pub fn write_element(out: &mut String, name: &str, value: &Value) {
    write_element_as(out, name, value, XmlStyle::Query.list_item())
}

/// [`write_element`] with lists of `<item>` elements.
fn write_element_as(out: &mut String, name: &str, value: &Value, item: &str) {
    if value.is_null() {
        return;
    }
    if !is_name(name) {
        tracing::warn!(
            name,
            "member with a name XML cannot carry left out of a response"
        );
        return;
    }
    let start = out.len();
    out.push('<');
    out.push_str(name);
    out.push('>');
    let content = out.len();
    write_content(out, value, item);
    if out.len() == content {
        out.truncate(start);
        out.push('<');
        out.push_str(name);
        out.push_str("/>");
    } else {
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

fn write_content(out: &mut String, value: &Value, item: &str) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => escape_into(out, s),
        // botocore reads the children of a list element whatever their name; AWS names them `member` (`item`).
        Value::Array(items) => items
            .iter()
            .for_each(|v| write_element_as(out, item, v, item)),
        Value::Object(members) => members
            .iter()
            .for_each(|(k, v)| write_element_as(out, k, v, item)),
    }
}

fn open_root(out: &mut String, name: &str, namespace: Option<&str>) {
    out.push('<');
    out.push_str(name);
    if let Some(ns) = namespace {
        out.push_str(" xmlns=\"");
        escape_into(out, ns);
        out.push('"');
    }
    out.push('>');
}

/// `<{Action}Response xmlns=..><{Action}Result>..</{Action}Result><ResponseMetadata>..`. A null result writes no
/// Result element, as AWS answers an operation without an output shape. EC2:
/// `<{Action}Response xmlns=..><requestId>..</requestId>..members..`.
pub fn success_document(
    style: XmlStyle,
    action: &str,
    namespace: &str,
    result: &Value,
    request_id: &str,
) -> String {
    let mut out = String::with_capacity(256);
    let root = format!("{action}Response");
    open_root(&mut out, &root, Some(namespace));
    if style == XmlStyle::Ec2 {
        out.push_str("<requestId>");
        escape_into(&mut out, request_id);
        out.push_str("</requestId>");
        write_content(&mut out, result, style.list_item());
        out.push_str("</");
        out.push_str(&root);
        out.push('>');
        return out;
    }
    write_element(&mut out, &format!("{action}Result"), result);
    out.push_str("<ResponseMetadata><RequestId>");
    escape_into(&mut out, request_id);
    out.push_str("</RequestId></ResponseMetadata></");
    out.push_str(&root);
    out.push('>');
    out
}

/// `<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>..</Code><Message>..</Message></Error><RequestId>..`.
/// The namespace is the service's, when the error happened after the service was known. EC2:
/// `<Response><Errors><Error><Code>..</Code><Message>..</Message></Error></Errors><RequestID>..`.
pub fn error_document(
    style: XmlStyle,
    err: &AwsError,
    namespace: Option<&str>,
    request_id: &str,
) -> String {
    let mut out = String::with_capacity(256);
    if style == XmlStyle::Ec2 {
        out.push_str("<Response><Errors><Error><Code>");
        escape_into(&mut out, &err.code);
        out.push_str("</Code><Message>");
        escape_into(&mut out, &err.message);
        out.push_str("</Message></Error></Errors><RequestID>");
        escape_into(&mut out, request_id);
        out.push_str("</RequestID></Response>");
        return out;
    }
    open_root(&mut out, "ErrorResponse", namespace);
    out.push_str("<Error><Type>");
    out.push_str(if err.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    });
    out.push_str("</Type><Code>");
    escape_into(&mut out, &err.code);
    out.push_str("</Code><Message>");
    escape_into(&mut out, &err.message);
    out.push_str("</Message></Error><RequestId>");
    escape_into(&mut out, request_id);
    out.push_str("</RequestId></ErrorResponse>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::json;

    fn element(name: &str, value: Value) -> String {
        let mut out = String::new();
        write_element(&mut out, name, &value);
        out
    }

    #[test]
    fn escapes_markup_and_characters_xml_cannot_carry() {
        let mut out = String::new();
        escape_into(
            &mut out,
            "a&b<c>d\"e'f\r\ng\th\u{0}i\u{1b}j\u{fffe}k\u{ffff}é😀",
        );
        assert_eq!(
            out,
            "a&amp;b&lt;c&gt;d&quot;e&apos;f&#xD;\ng\th\u{fffd}i\u{fffd}j\u{fffd}k\u{fffd}é😀"
        );
    }

    #[test]
    fn writes_scalars_as_text_and_leaves_nulls_out() {
        assert_eq!(element("Port", json!(80)), "<Port>80</Port>");
        assert_eq!(element("Weight", json!(0.5)), "<Weight>0.5</Weight>");
        assert_eq!(element("On", json!(true)), "<On>true</On>");
        assert_eq!(element("Off", json!(false)), "<Off>false</Off>");
        assert_eq!(element("Name", json!("a<b")), "<Name>a&lt;b</Name>");
        assert_eq!(element("Name", json!("")), "<Name/>");
        assert_eq!(element("Gone", Value::Null), "");
    }

    #[test]
    fn writes_nested_structures_and_member_lists() {
        // Members in name order, so that the test holds whether serde_json keeps insertion order or not.
        let value = json!({
            "LoadBalancers": [
                {"AvailabilityZones": [{"ZoneName": "us-east-1a"}], "LoadBalancerName": "web",
                 "SecurityGroups": [], "State": {"Code": "active", "Reason": null}},
                {"LoadBalancerName": "api"}
            ],
            "Matrix": [["a"], []],
            "NextMarker": null
        });
        assert_eq!(
            element("DescribeLoadBalancersResult", value),
            "<DescribeLoadBalancersResult>\
             <LoadBalancers>\
             <member><AvailabilityZones><member><ZoneName>us-east-1a</ZoneName></member></AvailabilityZones>\
             <LoadBalancerName>web</LoadBalancerName><SecurityGroups/><State><Code>active</Code></State></member>\
             <member><LoadBalancerName>api</LoadBalancerName></member>\
             </LoadBalancers>\
             <Matrix><member><member>a</member></member><member/></Matrix>\
             </DescribeLoadBalancersResult>"
        );
    }

    #[test]
    fn leaves_out_members_whose_names_xml_cannot_carry() {
        assert_eq!(
            element("R", json!({"ok": 1, "a b": 2, "<x>": 3, "1a": 4, "": 5})),
            "<R><ok>1</ok></R>"
        );
    }

    #[test]
    fn wraps_results_and_errors_in_their_documents() {
        assert_eq!(
            success_document(XmlStyle::Query, "AddTags", "http://ns/", &json!({}), "rid"),
            "<AddTagsResponse xmlns=\"http://ns/\"><AddTagsResult/>\
             <ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></AddTagsResponse>"
        );
        assert_eq!(
            success_document(
                XmlStyle::Query,
                "DeleteUser",
                "http://ns/",
                &Value::Null,
                "rid"
            ),
            "<DeleteUserResponse xmlns=\"http://ns/\">\
             <ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DeleteUserResponse>"
        );
        let err = AwsError::client("ValidationError", "Value 'a&b' is bad");
        assert_eq!(
            error_document(XmlStyle::Query, &err, Some("http://ns/"), "rid"),
            "<ErrorResponse xmlns=\"http://ns/\"><Error><Type>Sender</Type><Code>ValidationError</Code>\
             <Message>Value &apos;a&amp;b&apos; is bad</Message></Error><RequestId>rid</RequestId></ErrorResponse>"
        );
        let err = AwsError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "busy",
        );
        assert_eq!(
            error_document(XmlStyle::Query, &err, None, "rid"),
            "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>\
             <Message>busy</Message></Error><RequestId>rid</RequestId></ErrorResponse>"
        );
    }

    #[test]
    fn writes_ec2_documents() {
        let value = json!({"vpcSet": [{"vpcId": "vpc-1", "tagSet": []}], "nextToken": null});
        assert_eq!(
            success_document(XmlStyle::Ec2, "DescribeVpcs", "http://ec2/", &value, "rid"),
            "<DescribeVpcsResponse xmlns=\"http://ec2/\"><requestId>rid</requestId>\
             <vpcSet><item><tagSet/><vpcId>vpc-1</vpcId></item></vpcSet></DescribeVpcsResponse>"
        );
        assert_eq!(
            success_document(XmlStyle::Ec2, "DeleteVpc", "http://ec2/", &Value::Null, "rid"),
            "<DeleteVpcResponse xmlns=\"http://ec2/\"><requestId>rid</requestId></DeleteVpcResponse>"
        );
        let err = AwsError::client("InvalidVpcID.NotFound", "The vpc ID 'vpc-x' does not exist");
        assert_eq!(
            error_document(XmlStyle::Ec2, &err, Some("http://ec2/"), "rid"),
            "<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>\
             <Message>The vpc ID &apos;vpc-x&apos; does not exist</Message></Error></Errors>\
             <RequestID>rid</RequestID></Response>"
        );
    }
}
