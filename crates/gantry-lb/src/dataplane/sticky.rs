//! Which target group and target a forwarded request goes to, cookie stickiness included: a weighted forward with
//! target group stickiness keeps a client on the group its `AWSALBTG` cookie names, and a target group with
//! duration-based stickiness (`stickiness.type` `lb_cookie`) keeps it on the target its `AWSALB` cookie names while
//! that target is in service. Every answer refreshes the cookies, as ALB resets their expiry on every request.

use std::sync::Arc;

use super::seal::Sealer;
use super::{Routes, Stickiness, TargetGroupRoutes, TargetInService};
use crate::model::Action;
use crate::rules;

pub const TARGET_COOKIE: &str = "AWSALB";
pub const GROUP_COOKIE: &str = "AWSALBTG";

/// Where a request goes, and the `Set-Cookie` values its answer gets.
pub struct Choice<'r> {
    pub group: &'r Arc<TargetGroupRoutes>,
    pub target: &'r TargetInService,
    pub cookies: Vec<String>,
}

/// What a request brings to the choice.
pub struct Ask<'a> {
    pub headers: &'a hyper::HeaderMap,
    pub https: bool,
    /// Epoch seconds.
    pub now: u64,
}

/// The (target group ARN, weight) pairs of a forward action.
fn groups_of(action: &Action) -> Vec<(&str, u32)> {
    match action
        .forward_config
        .as_ref()
        .and_then(|f| f.target_groups.as_ref())
    {
        Some(list) if !list.is_empty() => list
            .iter()
            .filter_map(|t| Some((t.target_group_arn.as_deref()?, t.weight.unwrap_or(1))))
            .collect(),
        _ => action
            .target_group_arn
            .iter()
            .map(|a| (a.as_str(), 1))
            .collect(),
    }
}

/// The seconds of the forward's target group stickiness when it is on.
fn group_stickiness(action: &Action) -> Option<u64> {
    let c = action
        .forward_config
        .as_ref()?
        .target_group_stickiness_config
        .as_ref()?;
    (c.enabled == Some(true)).then(|| u64::from(c.duration_seconds.unwrap_or(3600)))
}

/// `None` when there is no target group or no target in service to send to (503).
pub fn choose<'r>(
    sealer: &Sealer,
    routes: &'r Routes,
    action: &Action,
    ask: &Ask<'_>,
) -> Option<Choice<'r>> {
    let groups = groups_of(action);
    let names: Vec<&str> = groups.iter().map(|(a, _)| *a).collect();
    let mut cookies = Vec::new();
    let sticky_group = group_stickiness(action);
    // The group the cookie names, while it has targets to send to.
    let kept = sticky_group
        .and_then(|_| request_cookie(ask.headers, GROUP_COOKIE))
        .and_then(|v| sealer.open_group(v, &names, ask.now))
        .filter(|i| {
            routes
                .target_groups
                .get(names[*i])
                .is_some_and(|g| !g.targets.is_empty())
        });
    let i = match kept {
        Some(i) => i,
        None => {
            let weights: Vec<u32> = groups.iter().map(|(_, w)| *w).collect();
            rules::pick_weighted_rng(&weights, &mut rand::thread_rng())?
        }
    };
    let group = routes.target_groups.get(names[i])?;
    if let Some(secs) = sticky_group {
        let expires = ask.now + secs;
        let value = sealer.seal_group(&group.arn, expires);
        cookies.extend(set_cookies(GROUP_COOKIE, &value, expires, ask.https));
    }
    let target = match group.stickiness {
        Stickiness::LbCookie(duration) => {
            let kept = request_cookie(ask.headers, TARGET_COOKIE)
                .and_then(|v| sealer.open_target(v, &group.arn, ask.now))
                .and_then(|addr| group.find(addr));
            let target = kept.or_else(|| group.pick())?;
            let expires = ask.now + duration.as_secs();
            let value = sealer.seal_target(&group.arn, target.addr, expires);
            cookies.extend(set_cookies(TARGET_COOKIE, &value, expires, ask.https));
            target
        }
        _ => group.pick()?,
    };
    Some(Choice {
        group,
        target,
        cookies,
    })
}

/// The value of the request cookie `name` among `Cookie` headers.
pub fn request_cookie<'h>(headers: &'h hyper::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` values of a stickiness cookie and its CORS twin, as ALB sends them: `Expires` (not
/// `Max-Age`), path `/`, and `SameSite=None` on the twin (`Secure` too on HTTPS listeners, as browsers want).
pub fn set_cookies(name: &str, value: &str, expires: u64, https: bool) -> [String; 2] {
    let date = http_date(expires);
    let secure = if https { "; Secure" } else { "" };
    [
        format!("{name}={value}; Expires={date}; Path=/"),
        format!("{name}CORS={value}; Expires={date}; Path=/; SameSite=None{secure}"),
    ]
}

/// An IMF-fixdate (`Thu, 01 Jan 1970 00:00:00 GMT`) of epoch seconds.
pub fn http_date(epoch: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // `YYYY-MM-DDTHH:MM:SSZ`, from the one calendar the workspace has.
    let iso = gantry_model::time::iso8601(epoch as f64, false);
    let (Some(year), Some(month), Some(day), Some(time)) = (
        iso.get(0..4),
        iso.get(5..7),
        iso.get(8..10),
        iso.get(11..19),
    ) else {
        return iso;
    };
    let month = month
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    let weekday = DAYS[((epoch / 86_400) % 7) as usize];
    format!("{weekday}, {day} {month} {year} {time} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ForwardActionConfig, TargetGroupStickinessConfig, TargetGroupTuple};
    use std::net::SocketAddr;
    use std::time::Duration;

    fn group(arn: &str, ports: &[u16], stickiness: Stickiness) -> Arc<TargetGroupRoutes> {
        let targets = ports
            .iter()
            .map(|p| TargetInService {
                share: 1.0,
                addr: SocketAddr::from(([127, 0, 0, 1], *p)),
                in_flight: Arc::default(),
            })
            .collect();
        Arc::new(TargetGroupRoutes::new(
            arn.into(),
            targets,
            "round_robin".into(),
            stickiness,
        ))
    }

    fn routes(groups: Vec<Arc<TargetGroupRoutes>>) -> Routes {
        let mut r = Routes::default();
        for g in groups {
            r.target_groups.insert(g.arn.clone(), g);
        }
        r
    }

    fn forward(arn: &str) -> Action {
        Action {
            kind: "forward".into(),
            target_group_arn: Some(arn.into()),
            ..Default::default()
        }
    }

    fn with_cookies(cookies: &[String]) -> hyper::HeaderMap {
        let pairs: Vec<&str> = cookies.iter().filter_map(|c| c.split(';').next()).collect();
        let mut h = hyper::HeaderMap::new();
        h.insert("cookie", pairs.join("; ").parse().unwrap());
        h
    }

    fn port(c: &Choice<'_>) -> u16 {
        c.target.addr.port()
    }

    #[test]
    fn a_target_cookie_keeps_the_client_on_its_target_while_in_service() {
        let sealer = Sealer::new(b"k");
        let day = Stickiness::LbCookie(Duration::from_secs(86400));
        let r = routes(vec![group("tg", &[1, 2], day)]);
        let none = hyper::HeaderMap::new();
        let ask = |h| Ask {
            headers: h,
            https: false,
            now: 100,
        };
        let first = choose(&sealer, &r, &forward("tg"), &ask(&none)).unwrap();
        assert_eq!(first.cookies.len(), 2);
        assert!(first.cookies[0].starts_with("AWSALB="));
        assert!(
            first.cookies[1].starts_with("AWSALBCORS=")
                && first.cookies[1].ends_with("SameSite=None")
        );
        let jar = with_cookies(&first.cookies);
        for _ in 0..10 {
            let again = choose(&sealer, &r, &forward("tg"), &ask(&jar)).unwrap();
            assert_eq!(port(&again), port(&first));
            assert_eq!(again.cookies.len(), 2);
        }
        // Without the cookie, round robin.
        let ports: Vec<u16> = (0..4)
            .map(|_| port(&choose(&sealer, &r, &forward("tg"), &ask(&none)).unwrap()))
            .collect();
        assert!(ports.contains(&1) && ports.contains(&2));
        // Its target out of service: another, and a cookie naming it.
        let other = if port(&first) == 1 { 2 } else { 1 };
        let r2 = routes(vec![group("tg", &[other], day)]);
        let moved = choose(&sealer, &r2, &forward("tg"), &ask(&jar)).unwrap();
        assert_eq!(port(&moved), other);
        let moved_jar = with_cookies(&moved.cookies);
        assert_eq!(
            port(&choose(&sealer, &r, &forward("tg"), &ask(&moved_jar)).unwrap()),
            other
        );
        // A group without stickiness ignores the cookie and sets none.
        let plain = routes(vec![group("tg", &[1, 2], Stickiness::None)]);
        assert!(choose(&sealer, &plain, &forward("tg"), &ask(&jar))
            .unwrap()
            .cookies
            .is_empty());
        // No target: nothing to choose.
        assert!(choose(
            &sealer,
            &routes(vec![group("tg", &[], day)]),
            &forward("tg"),
            &ask(&jar)
        )
        .is_none());
    }

    #[test]
    fn a_group_cookie_keeps_the_client_on_its_target_group() {
        let sealer = Sealer::new(b"k");
        let r = routes(vec![
            group("a", &[1], Stickiness::None),
            group("b", &[2], Stickiness::None),
        ]);
        let action = Action {
            kind: "forward".into(),
            forward_config: Some(ForwardActionConfig {
                target_groups: Some(vec![
                    TargetGroupTuple {
                        target_group_arn: Some("a".into()),
                        weight: Some(50),
                    },
                    TargetGroupTuple {
                        target_group_arn: Some("b".into()),
                        weight: Some(50),
                    },
                ]),
                target_group_stickiness_config: Some(TargetGroupStickinessConfig {
                    enabled: Some(true),
                    duration_seconds: Some(60),
                }),
            }),
            ..Default::default()
        };
        let none = hyper::HeaderMap::new();
        let ask = |h| Ask {
            headers: h,
            https: true,
            now: 100,
        };
        let first = choose(&sealer, &r, &action, &ask(&none)).unwrap();
        assert_eq!(first.cookies.len(), 2);
        assert!(first.cookies[0].starts_with("AWSALBTG="));
        assert!(
            first.cookies[1].starts_with("AWSALBTGCORS=") && first.cookies[1].ends_with("; Secure")
        );
        let jar = with_cookies(&first.cookies);
        for _ in 0..20 {
            assert_eq!(
                choose(&sealer, &r, &action, &ask(&jar)).unwrap().group.arn,
                first.group.arn
            );
        }
        // Expired: chosen by weight again.
        let late = Ask {
            headers: &jar,
            https: true,
            now: 1000,
        };
        let seen: std::collections::HashSet<String> = (0..50)
            .map(|_| {
                choose(&sealer, &r, &action, &late)
                    .unwrap()
                    .group
                    .arn
                    .clone()
            })
            .collect();
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn cookie_headers() {
        let mut h = hyper::HeaderMap::new();
        h.append("cookie", "a=1; AWSALB=abc+/==".parse().unwrap());
        h.append("cookie", "AWSALBTG=x".parse().unwrap());
        assert_eq!(request_cookie(&h, "AWSALB"), Some("abc+/=="));
        assert_eq!(request_cookie(&h, "AWSALBTG"), Some("x"));
        assert_eq!(request_cookie(&h, "AWSALBCORS"), None);
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        let [a, cors] = set_cookies("AWSALB", "v", 0, false);
        assert_eq!(a, "AWSALB=v; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/");
        assert_eq!(
            cors,
            "AWSALBCORS=v; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; SameSite=None"
        );
        assert!(set_cookies("AWSALBTG", "v", 0, true)[1].ends_with("SameSite=None; Secure"));
    }
}
