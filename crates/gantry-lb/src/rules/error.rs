//! Why a rule's conditions or actions are refused. Worded like ELBv2's messages; the API layer maps them all to
//! its `ValidationError` (or the limit errors) in `errors.rs`.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    // Conditions.
    #[error("A rule must have at least one condition")]
    NoConditions,
    #[error("A '{field}' condition must have at least one value")]
    EmptyCondition { field: &'static str },
    #[error("A '{field}' condition value can't be empty")]
    EmptyValue { field: &'static str },
    #[error("The '{field}' condition value '{value}' is longer than '{max}' characters")]
    ValueTooLong {
        field: &'static str,
        value: String,
        max: usize,
    },
    #[error("The '{field}' condition value '{value}' contains characters that are not valid")]
    InvalidCharacters { field: &'static str, value: String },
    #[error("The host name '{0}' must contain at least one '.' and only alphabetical characters after the final '.'")]
    InvalidHostName(String),
    #[error("The HTTP header name '{0}' is not valid")]
    InvalidHeaderName(String),
    #[error("You can't use an 'http-header' condition for the Host header; use a 'host-header' condition instead")]
    HostHeaderInHttpHeader,
    #[error("The HTTP request method '{0}' is not valid")]
    InvalidMethod(String),
    #[error("The source IP '{0}' is not a valid CIDR block")]
    InvalidCidr(String),
    #[error("The CIDR '255.255.255.255/32' can't be used in a 'source-ip' condition")]
    ReservedCidr,
    #[error("A rule can only have one '{0}' condition")]
    DuplicateCondition(&'static str),
    #[error("A '{field}' condition can only have '{max}' values")]
    TooManyValuesInCondition { field: &'static str, max: usize },
    #[error("A rule can only have '{max}' condition values")]
    TooManyConditionValues { max: usize },
    #[error("A rule can only have '{max}' condition wildcards")]
    TooManyConditionWildcards { max: usize },

    // Redirect actions.
    #[error("The redirect protocol '{0}' must be one of 'HTTP', 'HTTPS' or '#{{protocol}}'")]
    InvalidRedirectProtocol(String),
    #[error("The redirect status code '{0}' must be one of 'HTTP_301' or 'HTTP_302'")]
    InvalidRedirectStatusCode(String),
    #[error("The redirect port '{0}' must be a number from 1 to 65535 or '#{{port}}'")]
    InvalidRedirectPort(String),
    #[error("The redirect path '{0}' must start with '/'")]
    RedirectPathNotAbsolute(String),
    #[error("The redirect {component} must be from '{min}' to '{max}' characters long")]
    RedirectComponentLength {
        component: &'static str,
        min: usize,
        max: usize,
    },
    #[error("The redirect {component} '{value}' contains characters that are not valid")]
    InvalidRedirectCharacters {
        component: &'static str,
        value: String,
    },
    #[error("The keyword '{keyword}' can't be used in the redirect {component}")]
    KeywordNotAllowed {
        keyword: &'static str,
        component: &'static str,
    },
    #[error("The redirect must change at least one of the protocol, host, port or path, or it would loop")]
    RedirectLoop,
    #[error("You can't redirect HTTPS to HTTP")]
    RedirectHttpsToHttp,

    // Fixed responses.
    #[error("The fixed response status code '{0}' must be a 2XX, 4XX or 5XX code")]
    InvalidFixedResponseStatusCode(String),
    #[error(
        "The fixed response content type '{0}' must be one of 'text/plain', 'text/css', 'text/html', \
         'application/javascript' or 'application/json'"
    )]
    InvalidFixedResponseContentType(String),
    #[error("The fixed response message body can't be longer than '{max}' characters")]
    FixedResponseBodyTooLong { max: usize },

    // Weighted forwards.
    #[error("The target group weight '{0}' must be from 0 to 999")]
    InvalidTargetGroupWeight(u32),
    #[error("A forward action can only have '{max}' target groups")]
    TooManyTargetGroups { max: usize },
}
