-- Forged-sender checks (SPEC 3): the provider table, each message's check results, and
-- the domains a mailbox's provider receives mail with (for the trusted hop).

-- One row per mail domain whose genuine mail leaves through the provider's own relays
-- (seed 002's `dns` table, plus where the relays are named). ptr_domains and ns_matches
-- are comma-separated; an empty ptr_domains means the domain itself, an empty ns_matches
-- means the PTR must be forward-confirmed instead (see quorum_domain::provider).
CREATE TABLE providers (
    domain        TEXT    PRIMARY KEY,
    major_isp     BOOLEAN NOT NULL DEFAULT TRUE,
    ptr_supported BOOLEAN NOT NULL DEFAULT TRUE,
    ptr_required  BOOLEAN NOT NULL DEFAULT FALSE,
    ptr_domains   TEXT    NOT NULL DEFAULT '',
    ns_matches    TEXT    NOT NULL DEFAULT ''
);

-- The seed rows: large free-mail providers whose outgoing relays carry PTR names under
-- the listed domains and resolve forward to themselves (so the rule needs no name-server
-- list that could go stale; operators can add ns_matches once verified with
-- `dig -x <relay ip>` and `dig NS <reverse zone>`, as seed 002 did for web.de).
--   Google (gmail.com, googlemail.com): relays named mail-*.google.com.
--   Yahoo (yahoo.com, ymail.com, rocketmail.com, and AOL since it moved onto Yahoo's
--     platform): relays named *.mail.yahoo.com / *.yahoo.com.
--   Microsoft consumer mail (hotmail.com, outlook.com, live.com, msn.com): relays named
--     *.outbound.protection.outlook.com.
--   United Internet (web.de, gmx.de, gmx.net): relays named mout.web.de / mout.gmx.net.
--   Yandex (yandex.ru, yandex.com): relays named *.mail.yandex.net.
-- ptr_required (deletion) only where the domain's owner itself tells receivers to reject
-- mail from other servers (DMARC p=reject: the Yahoo and AOL domains). Elsewhere people do
-- send with a free-mail From through their ISP's server (the corpus has a gmx.net ham
-- sent through T-Online), so a failed PTR check is evidence, not a verdict; the operator
-- decides per provider. ptr_required never condemns list or forwarder mail, nor mail
-- with an aligned DKIM signature (quorum_forgery::evidence).
INSERT INTO providers (domain, major_isp, ptr_supported, ptr_required, ptr_domains, ns_matches) VALUES
    ('gmail.com',       TRUE, TRUE, FALSE, 'google.com', ''),
    ('googlemail.com',  TRUE, TRUE, FALSE, 'google.com', ''),
    ('yahoo.com',       TRUE, TRUE, TRUE,  'yahoo.com', ''),
    ('ymail.com',       TRUE, TRUE, TRUE,  'yahoo.com', ''),
    ('rocketmail.com',  TRUE, TRUE, TRUE,  'yahoo.com', ''),
    ('aol.com',         TRUE, TRUE, TRUE,  'yahoo.com,aol.com', ''),
    ('hotmail.com',     TRUE, TRUE, FALSE, 'outlook.com,hotmail.com', ''),
    ('outlook.com',     TRUE, TRUE, FALSE, 'outlook.com', ''),
    ('live.com',        TRUE, TRUE, FALSE, 'outlook.com,live.com', ''),
    ('msn.com',         TRUE, TRUE, FALSE, 'outlook.com,msn.com', ''),
    ('web.de',          TRUE, TRUE, FALSE, 'web.de', ''),
    ('gmx.de',          TRUE, TRUE, FALSE, 'gmx.net', ''),
    ('gmx.net',         TRUE, TRUE, FALSE, 'gmx.net', ''),
    ('yandex.ru',       TRUE, TRUE, FALSE, 'yandex.net,yandex.ru', ''),
    ('yandex.com',      TRUE, TRUE, FALSE, 'yandex.net,yandex.ru', '');

-- What the checks found (quorum_forgery::Evidence as JSON), the line shown to people, and
-- whether the checks finished: 'done', or 'incomplete' (a DNS failure; checked again
-- before the summary). NULL for messages quarantined before this migration.
ALTER TABLE messages ADD COLUMN evidence TEXT;
ALTER TABLE messages ADD COLUMN reason TEXT;
ALTER TABLE messages ADD COLUMN check_state TEXT;
CREATE INDEX messages_recheck ON messages (mailbox_id) WHERE check_state = 'incomplete' AND status = 'held';

-- Domains whose Received headers the mailbox's provider writes (comma-separated); empty
-- means: learn them from each message's Received chain (quorum_domain::received).
ALTER TABLE mailboxes ADD COLUMN trusted_domains TEXT NOT NULL DEFAULT '';
