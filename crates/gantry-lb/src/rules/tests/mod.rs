//! Unit tests of the rules module, one file per part; `Req` builds the request facts they share.

mod conditions;
mod fixed;
mod redirect;
mod request;
mod select;
mod validation;
mod weighted;
mod wildcard;

use std::net::IpAddr;

use super::RequestFacts;

/// An owned request to borrow `RequestFacts` from.
pub(super) struct Req {
    method: String,
    host: Option<String>,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    source_ip: IpAddr,
}

impl Req {
    pub(super) fn get(path: &str) -> Req {
        Req {
            method: "GET".into(),
            host: Some("www.example.com".into()),
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            source_ip: "192.0.2.10".parse().expect("test address"),
        }
    }

    pub(super) fn method(mut self, method: &str) -> Req {
        self.method = method.into();
        self
    }

    pub(super) fn host(mut self, host: Option<&str>) -> Req {
        self.host = host.map(Into::into);
        self
    }

    pub(super) fn query(mut self, pairs: &[(&str, &str)]) -> Req {
        self.query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    pub(super) fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(super) fn from(mut self, ip: &str) -> Req {
        self.source_ip = ip.parse().expect("test address");
        self
    }

    pub(super) fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: &self.method,
            host: self.host.as_deref(),
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            source_ip: self.source_ip,
        }
    }
}

pub(super) fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}
