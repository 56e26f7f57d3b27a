use crate::rules::{
    redirect_location, validate_redirect, validate_redirect_for_listener, Protocol, RedirectConfig,
    RedirectFacts, RuleError,
};

fn config(status: &str) -> RedirectConfig {
    RedirectConfig {
        status_code: status.into(),
        ..RedirectConfig::default()
    }
}

fn facts(protocol: &str, host: &str, port: u16, path: &str, query: &str) -> RedirectFacts {
    RedirectFacts {
        protocol: protocol.into(),
        host: host.into(),
        port,
        path: path.into(),
        query: query.into(),
    }
}

fn http_request(path: &str, query: &str) -> RedirectFacts {
    facts("HTTP", "www.example.com", 80, path, query)
}

#[test]
fn http_to_https_keeps_host_path_and_query() {
    // The guide's CLI example: HTTPS on 443, same host, path and query.
    let cfg = RedirectConfig {
        protocol: Some("HTTPS".into()),
        port: Some("443".into()),
        host: Some("#{host}".into()),
        path: Some("/#{path}".into()),
        query: Some("#{query}".into()),
        status_code: "HTTP_301".into(),
    };
    let loc = redirect_location(&cfg, &http_request("/cart/items", "id=7&x=1"));
    assert_eq!(loc, "https://www.example.com/cart/items?id=7&x=1");
    assert_eq!(cfg.status(), 301);
}

#[test]
fn unset_components_default_to_the_originals() {
    let cfg = RedirectConfig {
        protocol: Some("HTTPS".into()),
        ..config("HTTP_302")
    };
    let req = facts("HTTP", "shop.example.com", 8080, "/a", "b=c");
    // The port is kept (8080), so it is written even though the protocol changed.
    assert_eq!(
        redirect_location(&cfg, &req),
        "https://shop.example.com:8080/a?b=c"
    );
    assert_eq!(cfg.status(), 302);
}

#[test]
fn default_ports_are_left_out_others_written() {
    let to_https = RedirectConfig {
        protocol: Some("HTTPS".into()),
        port: Some("443".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&to_https, &http_request("/", "")),
        "https://www.example.com/"
    );
    let custom = RedirectConfig {
        protocol: Some("HTTPS".into()),
        port: Some("40443".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&custom, &http_request("/x", "")),
        "https://www.example.com:40443/x"
    );
    let http_on_443 = RedirectConfig {
        protocol: Some("HTTP".into()),
        port: Some("443".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&http_on_443, &http_request("/", "")),
        "http://www.example.com:443/"
    );
}

#[test]
fn path_keyword_drops_the_leading_slash() {
    let cfg = RedirectConfig {
        path: Some("/new/#{path}".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&cfg, &http_request("/old/page", "")),
        "http://www.example.com/new/old/page"
    );
    assert_eq!(
        redirect_location(&cfg, &http_request("/", "")),
        "http://www.example.com/new/"
    );
}

#[test]
fn host_keyword_composes_and_the_request_port_is_dropped_from_it() {
    let cfg = RedirectConfig {
        host: Some("example.#{host}".into()),
        ..config("HTTP_301")
    };
    let req = facts("https", "Shop.Test:8443", 8443, "/p", "");
    assert_eq!(
        redirect_location(&cfg, &req),
        "https://example.Shop.Test:8443/p"
    );
}

#[test]
fn path_may_use_host_and_port() {
    let cfg = RedirectConfig {
        host: Some("archive.example.com".into()),
        path: Some("/#{host}/#{port}/#{path}".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&cfg, &http_request("/x", "")),
        "http://archive.example.com/www.example.com/80/x"
    );
}

#[test]
fn query_is_appended_only_when_not_empty() {
    let keep = RedirectConfig {
        host: Some("other.example.com".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&keep, &http_request("/p", "")),
        "http://other.example.com/p"
    );
    let add = RedirectConfig {
        host: Some("other.example.com".into()),
        query: Some("#{query}&value=xyz".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&add, &http_request("/p", "a=1")),
        "http://other.example.com/p?a=1&value=xyz"
    );
    let drop = RedirectConfig {
        host: Some("other.example.com".into()),
        query: Some(String::new()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&drop, &http_request("/p", "a=1")),
        "http://other.example.com/p"
    );
}

#[test]
fn query_may_use_every_keyword() {
    let cfg = RedirectConfig {
        path: Some("/login".into()),
        query: Some("from=#{protocol}://#{host}:#{port}/#{path}&#{query}".into()),
        ..config("HTTP_302")
    };
    assert_eq!(
        redirect_location(&cfg, &http_request("/account", "tab=2")),
        "http://www.example.com/login?from=HTTP://www.example.com:80/account&tab=2"
    );
}

#[test]
fn substituted_request_text_is_not_expanded_again() {
    let cfg = RedirectConfig {
        path: Some("/n/#{path}".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&cfg, &http_request("/#{host}", "")),
        "http://www.example.com/n/#{host}"
    );
    let unknown = RedirectConfig {
        query: Some("a=#{nope}".into()),
        host: Some("x.example.com".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        redirect_location(&unknown, &http_request("/", "")),
        "http://x.example.com/?a=#{nope}"
    );
}

#[test]
fn validation_accepts_documented_configurations() {
    for cfg in [
        RedirectConfig {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            host: Some("#{host}".into()),
            path: Some("/#{path}".into()),
            query: Some("#{query}".into()),
            status_code: "HTTP_301".into(),
        },
        RedirectConfig {
            path: Some("/new/#{path}".into()),
            ..config("HTTP_302")
        },
        RedirectConfig {
            host: Some("example.#{host}".into()),
            ..config("HTTP_301")
        },
        RedirectConfig {
            port: Some("8080".into()),
            ..config("HTTP_301")
        },
        RedirectConfig {
            protocol: Some("#{protocol}".into()),
            port: Some("65535".into()),
            ..config("HTTP_301")
        },
    ] {
        assert_eq!(validate_redirect(&cfg), Ok(()), "{cfg:?}");
    }
}

#[test]
fn validation_checks_protocol_status_and_port() {
    let base = RedirectConfig {
        host: Some("a.example.com".into()),
        ..config("HTTP_301")
    };
    let with = |f: fn(&mut RedirectConfig)| {
        let mut c = base.clone();
        f(&mut c);
        validate_redirect(&c)
    };
    assert_eq!(
        with(|c| c.protocol = Some("FTP".into())),
        Err(RuleError::InvalidRedirectProtocol("FTP".into()))
    );
    assert_eq!(
        with(|c| c.protocol = Some("https".into())),
        Err(RuleError::InvalidRedirectProtocol("https".into()))
    );
    assert_eq!(
        with(|c| c.status_code = "HTTP_307".into()),
        Err(RuleError::InvalidRedirectStatusCode("HTTP_307".into()))
    );
    assert_eq!(
        with(|c| c.status_code = "301".into()),
        Err(RuleError::InvalidRedirectStatusCode("301".into()))
    );
    for bad in ["0", "65536", "-1", "+80", "http", "", "#{host}"] {
        let mut c = base.clone();
        c.port = Some(bad.into());
        assert_eq!(
            validate_redirect(&c),
            Err(RuleError::InvalidRedirectPort(bad.into())),
            "{bad:?}"
        );
    }
}

#[test]
fn validation_checks_path_host_and_query_shapes() {
    let base = config("HTTP_301");
    let path = |p: &str| {
        validate_redirect(&RedirectConfig {
            path: Some(p.into()),
            ..base.clone()
        })
    };
    assert_eq!(
        path("new/#{path}"),
        Err(RuleError::RedirectPathNotAbsolute("new/#{path}".into()))
    );
    assert!(matches!(
        path(""),
        Err(RuleError::RedirectComponentLength {
            component: "path",
            ..
        })
    ));
    assert!(matches!(
        path(&format!("/{}", "a".repeat(128))),
        Err(RuleError::RedirectComponentLength { .. })
    ));
    assert!(matches!(
        path("/a b"),
        Err(RuleError::InvalidRedirectCharacters {
            component: "path",
            ..
        })
    ));
    assert_eq!(
        path("/x/#{query}"),
        Err(RuleError::KeywordNotAllowed {
            keyword: "#{query}",
            component: "path"
        })
    );
    assert_eq!(
        path("/#{protocol}/x"),
        Err(RuleError::KeywordNotAllowed {
            keyword: "#{protocol}",
            component: "path"
        })
    );

    let host = |h: &str| {
        validate_redirect(&RedirectConfig {
            host: Some(h.into()),
            ..base.clone()
        })
    };
    assert_eq!(
        host("#{path}.example.com"),
        Err(RuleError::KeywordNotAllowed {
            keyword: "#{path}",
            component: "host"
        })
    );
    assert!(matches!(
        host("bad_host.example.com"),
        Err(RuleError::InvalidRedirectCharacters {
            component: "host",
            ..
        })
    ));
    assert!(matches!(
        host(""),
        Err(RuleError::RedirectComponentLength {
            component: "host",
            ..
        })
    ));

    let query = |q: &str| {
        validate_redirect(&RedirectConfig {
            host: Some("a.example.com".into()),
            query: Some(q.into()),
            ..base.clone()
        })
    };
    assert_eq!(query(""), Ok(()));
    assert!(matches!(
        query(&"q".repeat(129)),
        Err(RuleError::RedirectComponentLength {
            component: "query",
            ..
        })
    ));
}

#[test]
fn a_redirect_must_change_protocol_host_port_or_path() {
    assert_eq!(
        validate_redirect(&config("HTTP_301")),
        Err(RuleError::RedirectLoop)
    );
    let identity = RedirectConfig {
        protocol: Some("#{protocol}".into()),
        host: Some("#{host}".into()),
        port: Some("#{port}".into()),
        path: Some("/#{path}".into()),
        query: Some("#{query}&x=1".into()),
        status_code: "HTTP_302".into(),
    };
    // Changing only the query still loops: the guide leaves it out of the components that count.
    assert_eq!(validate_redirect(&identity), Err(RuleError::RedirectLoop));
}

#[test]
fn listener_checks_refuse_downgrades_and_literal_loops() {
    let to_http = RedirectConfig {
        protocol: Some("HTTP".into()),
        port: Some("80".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        validate_redirect_for_listener(&to_http, Protocol::Https, 443),
        Err(RuleError::RedirectHttpsToHttp)
    );
    assert_eq!(
        validate_redirect_for_listener(&to_http, Protocol::Http, 8080),
        Ok(())
    );
    let same = RedirectConfig {
        protocol: Some("HTTPS".into()),
        port: Some("443".into()),
        ..config("HTTP_301")
    };
    assert_eq!(
        validate_redirect_for_listener(&same, Protocol::Https, 443),
        Err(RuleError::RedirectLoop)
    );
    assert_eq!(
        validate_redirect_for_listener(&same, Protocol::Http, 80),
        Ok(())
    );
    assert_eq!(
        validate_redirect_for_listener(&same, Protocol::Https, 8443),
        Ok(())
    );
}
