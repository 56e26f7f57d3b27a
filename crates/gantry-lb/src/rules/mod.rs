//! Listener rule semantics of an Application Load Balancer, as pure functions over plain data: which rule a
//! request selects (conditions, priority order, the default rule last), whether a rule's conditions are
//! acceptable to ELBv2, where a redirect action sends the client, which target group a weighted forward picks,
//! and what a fixed response may contain.
//!
//! It lives apart from the API handlers and the proxy because both need exactly the same answers: the API
//! validates with it when rules are created, the data plane evaluates with it on every request. It does no I/O,
//! knows nothing of the store or the wire, and follows the ELBv2 documentation (the user guide's "Condition types
//! for listener rules" and "Redirect actions", and the API reference's condition and action configs).

mod cidr;
mod condition;
mod error;
mod fixed;
mod redirect;
mod request;
mod validate;
mod weighted;
mod wildcard;

#[cfg(test)]
mod tests;

pub use cidr::{Cidr, CidrParseError};
pub use condition::{condition_matches, rule_matches, select_rule, Condition};
pub use error::RuleError;
pub use fixed::{
    validate_fixed_response, FixedResponse, FIXED_RESPONSE_CONTENT_TYPES,
    MAX_FIXED_RESPONSE_BODY_LENGTH,
};
pub use redirect::{
    redirect_location, validate_redirect, validate_redirect_for_listener, Protocol, RedirectConfig,
    RedirectFacts, DEFAULT_PATH, HOST_KEYWORD, MAX_REDIRECT_HOST_LENGTH, MAX_REDIRECT_PATH_LENGTH,
    MAX_REDIRECT_QUERY_LENGTH, PATH_KEYWORD, PORT_KEYWORD, PROTOCOL_KEYWORD, QUERY_KEYWORD,
};
pub use request::{host_without_port, parse_query, percent_decode, RequestFacts};
pub use validate::{
    validate_conditions, MAX_HEADER_NAME_LENGTH, MAX_METHOD_LENGTH, MAX_SOURCE_IP_VALUES,
    MAX_VALUES_PER_CONDITION, MAX_VALUES_PER_RULE, MAX_VALUE_LENGTH, MAX_WILDCARDS_PER_RULE,
};
pub use weighted::{
    pick_weighted, pick_weighted_rng, validate_weights, MAX_TARGET_GROUPS_PER_ACTION,
    MAX_TARGET_GROUP_WEIGHT,
};
pub use wildcard::{count_wildcards, wildcard_match, MatchMode};
