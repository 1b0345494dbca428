-- The statistics' log-odds of spam a held message's line was printed with in its latest
-- summary (before calibration). An answer to the line (approve, deliver, or an empty box)
-- is then a labelled example at that value: what calibrates the printed P(not spam).
ALTER TABLE messages ADD COLUMN shown_logit DOUBLE PRECISION;
