//! One Query request, from the edge: body, SigV4, the service of the credential scope, the parameters, the
//! action, and the XML answer or error document.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::form::parse_form;
use super::xml::{error_document, success_document, XmlStyle};
use super::Params;
use crate::edge::{authenticate, call_guarded, read_body, respond, Edge, Protocol};
use crate::AwsError;

const CONTENT_TYPE: &str = "text/xml";

fn render_error(
    style: XmlStyle,
    err: &AwsError,
    namespace: Option<&str>,
    request_id: &str,
) -> Response {
    respond(
        err.status,
        CONTENT_TYPE,
        request_id,
        error_document(style, err, namespace, request_id),
    )
}

/// The parameters of the URL's query string, then those of a form body (botocore sends all in the body; a GET
/// has only the URL).
fn request_params(parts: &Parts, body: &[u8]) -> Result<Params, AwsError> {
    let malformed = |e: super::FormError| AwsError::client("InvalidQueryParameter", e.to_string());
    let mut pairs = parse_form(parts.uri.query().unwrap_or("").as_bytes()).map_err(malformed)?;
    if parts.method == Method::POST {
        pairs.extend(parse_form(body).map_err(malformed)?);
    }
    Ok(Params::from_pairs(pairs))
}

pub(crate) async fn handle(edge: &Edge, parts: Parts, body: Body, id: String) -> Response {
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return render_error(XmlStyle::Query, &e, None, &id),
    };
    let (ctx, signing_name) = match authenticate(edge, &parts, &body, &id, Protocol::Query) {
        Ok(v) => v,
        Err(e) => return render_error(XmlStyle::Query, &e, None, &id),
    };
    let Some(service) = edge.query_service(&signing_name).cloned() else {
        let e = AwsError::client(
            "InvalidAction",
            format!("Gantry does not serve {signing_name} in the Query protocol"),
        );
        return render_error(XmlStyle::Query, &e, None, &id);
    };
    let namespace = service.xml_namespace();
    let style = service.xml_style();
    let fail = |e: AwsError| render_error(style, &e, Some(namespace), &id);
    let params = match request_params(&parts, &body) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let action = match params.action() {
        None | Some("") => {
            return fail(AwsError::client("MissingAction", "Missing Action"));
        }
        // The action names the response's elements: anything but a plain name cannot be one of the service's.
        Some(a) if !a.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            return fail(AwsError::invalid_action(a, params.version()));
        }
        Some(a) => a.to_string(),
    };
    let what = format!("{signing_name}.{action}");
    match call_guarded(edge, service.call(&ctx, &action, &params), &what).await {
        Ok(value) => respond(
            StatusCode::OK,
            CONTENT_TYPE,
            &id,
            success_document(style, &action, namespace, &value, &id),
        ),
        Err(e) => fail(e),
    }
}
