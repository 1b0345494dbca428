//! An authoritative DNS server in the test process (hickory-server), with zones the test
//! writes: PTR records, reverse-zone NS records, A records, SPF/DKIM/DMARC TXT records.
//! The resolver under test is pointed at it; nothing goes to the Internet.

use std::{
    net::{IpAddr, SocketAddr},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use hickory_proto::rr::{
    Name, RData, Record,
    rdata::{A, AAAA, NS, PTR, SOA, TXT},
};
use hickory_server::{
    Server,
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType},
};
use tokio::net::{TcpListener, UdpSocket};

/// Zones and their records, built up by the test.
#[derive(Default)]
pub struct Zones {
    origins: Vec<Name>,
    records: Vec<Record>,
    /// Answer REFUSED outside the zones given, as a misconfigured server does.
    refuse_others: bool,
}

fn name(s: &str) -> Name {
    Name::from_str(&format!("{}.", s.trim_end_matches('.'))).expect("a valid DNS name")
}

impl Zones {
    pub fn new() -> Self {
        Zones::default()
    }

    /// A zone this server is authoritative for (its SOA is added; negative answers carry
    /// it, with a one-minute negative TTL).
    pub fn zone(mut self, origin: &str) -> Self {
        let origin = name(origin);
        let soa = SOA::new(name("ns.test"), name("hostmaster.test"), 1, 3600, 600, 86400, 60);
        self.records.push(Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)));
        self.origins.push(origin);
        self
    }

    pub fn ptr(mut self, ip: &str, target: &str) -> Self {
        let ip: IpAddr = ip.parse().expect("an IP address");
        self.records.push(Record::from_rdata(Name::from(ip), 3600, RData::PTR(PTR(name(target)))));
        self
    }

    pub fn ns(mut self, owner: &str, server: &str) -> Self {
        self.records.push(Record::from_rdata(name(owner), 3600, RData::NS(NS(name(server)))));
        self
    }

    pub fn addr(mut self, host: &str, ip: &str) -> Self {
        let rdata = match ip.parse::<IpAddr>().expect("an IP address") {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        self.records.push(Record::from_rdata(name(host), 3600, rdata));
        self
    }

    /// A TXT record; text longer than 255 bytes is split into strings as DNS requires.
    pub fn txt(mut self, owner: &str, text: &str) -> Self {
        let chunks = text.as_bytes().chunks(255).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        self.records.push(Record::from_rdata(name(owner), 3600, RData::TXT(TXT::new(chunks))));
        self
    }

    /// Names outside the zones get REFUSED instead of NXDOMAIN.
    pub fn refuse_others(mut self) -> Self {
        self.refuse_others = true;
        self
    }

    /// Every zone given, plus the root unless [`Zones::refuse_others`]: a name outside them
    /// all gets NXDOMAIN, as from a recursive resolver on the Internet.
    fn catalog(mut self) -> Catalog {
        if !self.refuse_others && !self.origins.iter().any(Name::is_root) {
            self = self.zone(".");
        }
        let mut handlers: Vec<(Name, InMemoryZoneHandler)> = self
            .origins
            .iter()
            .map(|o| (o.clone(), InMemoryZoneHandler::empty(o.clone(), ZoneType::Primary, AxfrPolicy::Deny)))
            .collect();
        for record in self.records {
            let (_, handler) = handlers
                .iter_mut()
                .filter(|(o, _)| o.zone_of(&record.name))
                .max_by_key(|(o, _)| o.num_labels())
                .unwrap_or_else(|| panic!("no zone holds {}", record.name));
            assert!(handler.upsert_mut(record, 1), "record rejected by its zone");
        }
        let mut catalog = Catalog::new();
        for (origin, handler) in handlers {
            let handler: Arc<dyn ZoneHandler> = Arc::new(handler);
            catalog.upsert(origin.into(), vec![handler]);
        }
        catalog
    }
}

/// A UDP socket and a TCP listener on one free loopback port (DNS uses both). The UDP
/// port the system picks may be taken for TCP by another process: then try another.
async fn same_port() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().expect("UDP address")).await {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP after 50 tries");
}

/// A running server; stops when dropped.
pub struct TestDns {
    pub addr: SocketAddr,
    server: Server<Catalog>,
}

impl TestDns {
    /// Serves `zones` over UDP and TCP on one loopback port.
    pub async fn start(zones: Zones) -> TestDns {
        let (udp, tcp) = same_port().await;
        let addr = udp.local_addr().expect("UDP address");
        let mut server = Server::new(zones.catalog());
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 65535);
        TestDns { addr, server }
    }

    pub async fn stop(mut self) {
        self.server.shutdown_gracefully().await.expect("DNS server shut down");
    }
}

/// A "server" that reads queries and never answers: every lookup runs into its timeout.
pub async fn silent_dns() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let (udp, tcp) = same_port().await;
    let addr = udp.local_addr().expect("UDP address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                r = udp.recv_from(&mut buf) => { if r.is_err() { break } }
                r = tcp.accept() => match r { Ok((s, _)) => held.push(s), Err(_) => break },
            }
        }
    });
    (addr, task)
}

/// Forgery-check settings that ask only `server`.
pub fn dns_settings(server: SocketAddr, timeout_ms: u64, budget_ms: u64) -> quorum_config::DnsSettings {
    quorum_config::DnsSettings {
        nameservers: vec![server],
        timeout_ms,
        check_budget_ms: budget_ms,
        concurrency: 64,
        cache_size: 16384,
    }
}
