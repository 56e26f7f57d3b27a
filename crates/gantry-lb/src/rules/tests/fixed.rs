use crate::rules::{validate_fixed_response, FixedResponse, RuleError};

fn response(status: &str, content_type: Option<&str>, body: Option<&str>) -> FixedResponse {
    FixedResponse {
        status_code: status.into(),
        content_type: content_type.map(Into::into),
        message_body: body.map(Into::into),
    }
}

#[test]
fn valid_responses_are_accepted() {
    assert_eq!(
        validate_fixed_response(&response("200", Some("text/plain"), Some("Hello world"))),
        Ok(())
    );
    for ct in [
        "text/plain",
        "text/css",
        "text/html",
        "application/javascript",
        "application/json",
    ] {
        assert_eq!(
            validate_fixed_response(&response("503", Some(ct), None)),
            Ok(()),
            "{ct}"
        );
    }
    assert_eq!(
        validate_fixed_response(&response("404", None, Some(""))),
        Ok(())
    );
    assert_eq!(response("418", None, None).status(), Some(418));
}

#[test]
fn status_codes_are_2xx_4xx_or_5xx() {
    for bad in ["301", "100", "600", "20", "2000", "2x0", "", " 200"] {
        assert_eq!(
            validate_fixed_response(&response(bad, None, None)),
            Err(RuleError::InvalidFixedResponseStatusCode(bad.into())),
            "{bad:?}"
        );
        assert_eq!(response(bad, None, None).status(), None);
    }
}

#[test]
fn content_types_are_the_five_documented() {
    for bad in [
        "text/xml",
        "TEXT/PLAIN",
        "text/plain; charset=utf-8",
        "application/octet-stream",
        "",
    ] {
        assert_eq!(
            validate_fixed_response(&response("200", Some(bad), None)),
            Err(RuleError::InvalidFixedResponseContentType(bad.into())),
            "{bad:?}"
        );
    }
}

#[test]
fn bodies_are_at_most_1024_characters() {
    let max = "x".repeat(1024);
    assert_eq!(
        validate_fixed_response(&response("200", None, Some(&max))),
        Ok(())
    );
    let over = "x".repeat(1025);
    assert_eq!(
        validate_fixed_response(&response("200", None, Some(&over))),
        Err(RuleError::FixedResponseBodyTooLong { max: 1024 })
    );
}

#[test]
fn fixed_response_uses_wire_field_names() {
    let json = serde_json::to_value(response("200", Some("text/plain"), Some("ok")))
        .expect("serializable");
    assert_eq!(
        json,
        serde_json::json!({"StatusCode": "200", "ContentType": "text/plain", "MessageBody": "ok"})
    );
}

#[test]
fn validate_method_is_the_free_function() {
    assert_eq!(response("200", None, None).validate(), Ok(()));
    assert_eq!(
        response("302", None, None).validate(),
        Err(RuleError::InvalidFixedResponseStatusCode("302".into()))
    );
}
