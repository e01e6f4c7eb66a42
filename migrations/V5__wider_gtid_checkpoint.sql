-- The GTID state outgrew VARCHAR(255): one `domain-server-sequence` per
-- MariaDB replication domain (nine large ones already exceed it), or MySQL's
-- UUID interval set (`uuid:1-5:7-9,...`, one entry per server that ever
-- wrote). TEXT holds 65,535 bytes, on MariaDB 10.5+ and MySQL 8 alike.
ALTER TABLE rowhook_checkpoints
    MODIFY gtid TEXT NULL;
