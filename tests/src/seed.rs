//! Seed 002's web.de examples: the forged spam and the genuine message as the subscriber's
//! provider (EarthLink) received them, and the DNS that `dig` showed for them.

use crate::dns::Zones;

/// The seed's forged web.de spam: handed over by 211.191.62.186, which has no PTR.
pub const SEED_FORGED: &str = "Return-Path: <qwceilqxodjbd@online.sh.cn>\r\n\
Received: from 207.217.125.20 ([211.191.62.186])\r\n\tby robin (EarthLink SMTP Server) with SMTP id 1bX4fK48O3NZFjX0\r\n\tTue, 17 Aug 2004 06:43:47 -0700 (PDT)\r\n\
Received: from dns3.web.de (dns3.web.de [73.212.13.183]) by 211.191.62.186 with SMTP id d7AJB51Jv7;\r\n\tTue, 17 Aug 2004 18:38:44 +0400\r\n\
From: \"Carmen Shepard\" <kzwjxg@web.de>\r\nReply-To: \"Carmen Shepard\" <kzwjxg@web.de>\r\nSubject: of 9 but\r\n\
To: lrtimmons@earthlink.net\r\nMessage-ID: <B84EE85692174DC@web.de>\r\nDate: Tue, 17 Aug 2004 20:43:44 +0600\r\n\r\nDewey Blair\r\n";

/// The seed's genuine web.de message (with a subject of its own, so tests can find it).
pub const SEED_GENUINE: &str = "Return-Path: <shelby_moore@web.de>\r\n\
Received: from fmmailgate01.web.de ([217.72.192.221])\r\n\tby sparrow (EarthLink SMTP Server) with ESMTP id 1bXqku7yV3NZFjV0\r\n\tfor <coolpage@earthlink.net>; Wed, 18 Aug 2004 06:18:14 -0700 (PDT)\r\n\
Received: by fmmailgate01.web.de (8.12.6/8.12.6/webde Linux 0.7) with SMTP id i7IDHq1d016358; Wed, 18 Aug 2004 15:18:12 +0200\r\n\
Received: from 203.168.2.77 by freemailng2002.web.de with HTTP;\r\n\tWed, 18 Aug 2004 15:18:07 +0200\r\n\
Date: Wed, 18 Aug 2004 15:18:07 +0200\r\nMessage-Id: <30890719@web.de>\r\nFrom: \"Shelby Moore\" <shelby_moore@web.de>\r\n\
To: coolpage@earthlink.net, shelby@coolpage.com\r\nSubject: Test from web.de\r\n\r\nTest\r\n";

/// The seed's DNS: a PTR and cinetic.de name servers for the genuine relay, nothing
/// (NXDOMAIN) for the spammer's address.
pub fn seed_zones() -> Zones {
    Zones::new()
        .zone("192.72.217.in-addr.arpa")
        .ns("192.72.217.in-addr.arpa", "nsx1.cinetic.de")
        .ns("192.72.217.in-addr.arpa", "nsx2.cinetic.de")
        .ptr("217.72.192.221", "fmmailgate01.web.de")
        .zone("191.211.in-addr.arpa")
        .zone("web.de")
        .addr("fmmailgate01.web.de", "217.72.192.221")
}
