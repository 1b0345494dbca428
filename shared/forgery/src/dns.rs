//! The lookups the reverse-DNS rule needs, over hickory's resolver (the same resolver, and
//! so the same cache, that `mail-auth` uses for SPF, DKIM and DMARC).

use std::net::IpAddr;

use mail_auth::hickory_resolver::{
    TokioResolver,
    net::NetError,
    proto::rr::{Name, RData, RecordType},
};

use crate::evidence::Answer;

/// hickory's answer, reduced to what the rules distinguish: NXDOMAIN and an empty answer
/// are answers ("there is none"); SERVFAIL, REFUSED, timeouts and transport errors are not.
fn answer<T>(result: Result<T, NetError>) -> Answer<T> {
    match result {
        Ok(v) => Answer::Found(v),
        Err(e) if e.is_no_records_found() => Answer::Missing,
        Err(e) => Answer::Failed(e.to_string()),
    }
}

fn fold<T, U>(a: Answer<T>, f: impl FnOnce(T) -> Answer<U>) -> Answer<U> {
    match a {
        Answer::Found(v) => f(v),
        Answer::Missing => Answer::Missing,
        Answer::Failed(e) => Answer::Failed(e),
    }
}

fn host(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// PTR names of `ip`.
pub async fn ptr(resolver: &TokioResolver, ip: IpAddr) -> Answer<Vec<String>> {
    let lookup = answer(resolver.lookup(Name::from(ip), RecordType::PTR).await);
    fold(lookup, |l| {
        let names: Vec<String> = l
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(host(&p.0)),
                _ => None,
            })
            .collect();
        if names.is_empty() { Answer::Missing } else { Answer::Found(names) }
    })
}

/// NS names of the reverse zone that holds the PTR of `ip`. The PTR's own name normally
/// has no NS records; the negative answer's SOA names the zone apex, whose NS are asked.
pub async fn reverse_zone_ns(resolver: &TokioResolver, ip: IpAddr) -> Answer<Vec<String>> {
    let owner = Name::from(ip);
    let apex = match resolver.lookup(owner.clone(), RecordType::NS).await {
        Ok(l) => return Answer::Found(ns_names(&l)),
        Err(e) if e.is_no_records_found() => match e.into_soa() {
            Some(soa) => soa.name.clone(),
            None => return Answer::Failed("no SOA in the negative answer for the PTR name".into()),
        },
        Err(e) => return Answer::Failed(e.to_string()),
    };
    fold(answer(resolver.lookup(apex, RecordType::NS).await), |l| {
        let names = ns_names(&l);
        if names.is_empty() { Answer::Missing } else { Answer::Found(names) }
    })
}

fn ns_names(lookup: &mail_auth::hickory_resolver::lookup::Lookup) -> Vec<String> {
    lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(host(&ns.0)),
            _ => None,
        })
        .collect()
}

/// Whether `name` has an address record equal to `ip` (forward confirmation).
pub async fn resolves_to(resolver: &TokioResolver, name: &str, ip: IpAddr) -> Answer<bool> {
    let Ok(fqdn) = Name::from_ascii(format!("{name}.")) else { return Answer::Missing };
    let kind = if ip.is_ipv4() { RecordType::A } else { RecordType::AAAA };
    fold(answer(resolver.lookup(fqdn, kind).await), |l| {
        Answer::Found(l.answers().iter().any(|r| match &r.data {
            RData::A(a) => IpAddr::V4(a.0) == ip,
            RData::AAAA(a) => IpAddr::V6(a.0) == ip,
            _ => false,
        }))
    })
}
