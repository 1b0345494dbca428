-- The operator's per-key evidence table (the statistics issue): for every evidence key with
-- votes (sender, domain, campaign, URL domain, Reply-To, network, short-text and attachment
-- hashes), its log-likelihood ratio with every counted user at full weight, and how many of
-- its units (senders, campaigns, or voters for one item) the votes call spam or not. It
-- replaces the domain table: the domains are its rows of kind 'domain' (the statistics
-- service writes every key again as it reads the votes at its next start).
CREATE TABLE key_stats (
    kind        TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    logit       DOUBLE PRECISION NOT NULL,
    spam_units  BIGINT NOT NULL,
    ham_units   BIGINT NOT NULL,
    computed_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE INDEX key_stats_by_logit ON key_stats (kind, logit);
DROP TABLE domain_stats;
