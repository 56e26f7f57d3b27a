//! The AWS Query protocol (ELBv2, IAM, STS, SQS's older form): form-encoded parameters in, XML out. A request is
//! routed by the service of its SigV4 credential scope and its `Action=`; its parameters are a tree of dotted
//! names (`Tags.member.1.Key`) that [`Params::decode`] turns into the service's typed input; the handler's JSON
//! answer is written as the `{Action}Result` element.

mod decode;
mod form;
mod handler;
mod params;
mod validation;
mod xml;

pub use form::{parse_form, FormError};
pub use params::Params;
pub use xml::XmlStyle;

pub(crate) use form::has_param;
pub(crate) use handler::handle;

use crate::edge::{RequestContext, ServiceFuture};

/// An AWS service spoken in the Query protocol.
pub trait QueryService: Send + Sync + 'static {
    /// The SigV4 signing name in the credential scope, e.g. `elasticloadbalancing`.
    fn signing_name(&self) -> &'static str;

    /// The `xmlNamespace` of the botocore model, e.g. `http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/`.
    fn xml_namespace(&self) -> &'static str;

    /// How its answers and errors are written: the Query protocol's way unless the service speaks `ec2`.
    fn xml_style(&self) -> XmlStyle {
        XmlStyle::Query
    }

    /// Handles one action. The Ok value is a JSON object whose members are the members of `{Action}Result`, with
    /// wire (PascalCase) names; arrays become `<member>` lists; nulls are omitted; numbers and bools are written
    /// as text. An empty object renders an empty `<{Action}Result/>`; `Value::Null` renders no Result element, as
    /// AWS answers an operation without an output shape. An action the service does not have is its to refuse,
    /// e.g. with [`AwsError::invalid_action`](crate::AwsError::invalid_action).
    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        action: &'a str,
        params: &'a Params,
    ) -> ServiceFuture<'a>;
}
