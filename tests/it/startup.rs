//! Startup checks: a source rowhook cannot use is refused with every
//! problem at once, each with what fixes it and whether the server must
//! restart; `rowhook check-config` lists them, `rowhook run` refuses with
//! the same list.

use mysql_async::prelude::*;
use rowhook::config::Config;
use rowhook::daemon::{check, RunError};
use rowhook::source::schema::{Problem, Problems, SchemaError};

use crate::rowhook::{test_config, TestDb};
use crate::support::mariadb::{self, MariaDb};

/// The problems `check` refused with; fails the test when it did not refuse that way.
async fn refused(config: &Config) -> Problems {
    match check(config).await {
        Err(RunError::Schema(SchemaError::Refused(problems))) => problems,
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("not refused"),
    }
}

/// The shipped rules with three mistakes: rule 1 names a column `state`
/// (`status` meant), rule 3 a column `title`, and a seventh rule the table
/// `tickets`, which does not exist (to a user without SELECT on it, the
/// server does not tell a missing table from a forbidden one).
fn rules_with_mistakes() -> String {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml")).unwrap();
    let replace = |text: String, from: &str, to: &str| {
        assert_eq!(text.matches(from).count(), 1, "{from:?} once in config/rowhook.toml");
        text.replace(from, to)
    };
    let text = replace(shipped, "status = \"status\"", "status = \"state\"");
    let text = replace(text, "fields = { thread_id = \"id\", subject = \"subject\" }", "fields = { thread_id = \"id\", subject = \"title\" }");
    text + "\n[[events]]\ntype = \"ticket.opened\"\ntable = \"tickets\"\noperations = [\"insert\"]\nfields = { ticket_id = \"id\" }\n"
}

/// What the server and the rules of [`every_problem_is_reported_at_once`]
/// get wrong, as the report says them (`db`: the application's database,
/// `user`: the account, quoted).
fn every_problem(db: &str, user: &str) -> Vec<String> {
    [
        "1. error: binlog_format is STATEMENT; rowhook needs ROW\n     fix: SET GLOBAL binlog_format = 'ROW'; it applies only to \
         connections opened afterwards: connections already open keep logging STATEMENT events until they reconnect",
        "Also put binlog_format = ROW in the server's config file (my.cnf: [mariadbd] on MariaDB, [mysqld] on MySQL) so that \
         it holds after a restart\n     server restart: not needed",
        "2. error: binlog_row_image is MINIMAL; rowhook needs FULL\n     fix: SET GLOBAL binlog_row_image = 'FULL'; it applies \
         only to connections opened afterwards",
        "Also put binlog_row_image = FULL in the server's config file",
        "3. warning: binlog_row_metadata is MINIMAL: column names come from information_schema, not from the binlog\n     \
         fix: rowhook works without it",
        "4. error: log_bin_compress is ON: compressed row events cannot be decoded\n     fix: SET GLOBAL log_bin_compress = OFF",
        &format!("5. error: the user {user} lacks REPLICATION SLAVE and REPLICATION CLIENT\n     fix: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {user};"),
        &format!(
            "6. error: the user {user} cannot read `{db}`.`emails`, `{db}`.`notes`, `{db}`.`tickets`: no SELECT privilege \
             (or no such table)\n     fix: GRANT SELECT ON `{db}`.* TO {user};"
        ),
        "7. error: events rule 1 (thread.created): table `threads` has no column `state`\n     fix: did you mean `status`? Fix the rule\n",
        "8. error: events rule 3 (thread.deleted): table `threads` has no column `title`\n     fix: fix the rule; the table's columns are id, subject,",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[actix_rt::test]
async fn every_problem_is_reported_at_once() {
    let server = MariaDb::start_private(&[
        "--binlog-format=STATEMENT",
        "--binlog-row-image=MINIMAL",
        "--binlog-row-metadata=MINIMAL",
        "--log-bin-compress=ON",
    ]);
    let app = TestDb::on(&server, "every_problem").await;
    // A user that can read `threads` only, with no replication grant.
    let mut root = mysql_async::Conn::from_url(server.root_url()).await.unwrap();
    root.query_drop("CREATE USER 'partial'@'%' IDENTIFIED BY 'partial-pw'").await.unwrap();
    root.query_drop(format!("GRANT SELECT ON `{}`.threads TO 'partial'@'%'", app.name)).await.unwrap();
    let url = format!("mysql://partial:partial-pw@127.0.0.1:{}/{}", server.port, app.name);
    let expected = every_problem(&app.name, "'partial'@'%'");

    let mut config = test_config(&url);
    config.events = Config::from_toml(&rules_with_mistakes()).unwrap().events;
    let problems = refused(&config).await;
    assert_eq!((problems.errors(), problems.warnings()), (7, 1), "{problems}");
    let report = problems.to_string();
    assert!(report.starts_with("the source database and the rules are not ready for rowhook (7 errors, 1 warning):\n  1. "), "{report}");
    for problem in &expected {
        assert!(report.contains(problem.as_str()), "missing from the report:\n{problem}\n--- report:\n{report}");
    }
    assert!(!report.contains("server restart: needed"), "nothing here needs a restart: {report}");

    // The built binary: check-config lists them all (and the state database's state) and fails; run refuses with them all.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rowhook.toml");
    std::fs::write(&file, rules_with_mistakes()).unwrap();
    let binary = |command: &str| {
        std::process::Command::new(crate::support::rowhook_bin())
            .args([command, "--config"])
            .arg(&file)
            .env("ROWHOOK__SOURCE__URL", &url)
            .env("ROWHOOK__STATE__URL", &app.url)
            .env("ROWHOOK__HTTP__LISTEN", crate::rowhook::free_addr().to_string())
            .env("ROWHOOK__LOG__LEVEL", "warn")
            .output()
            .expect("run rowhook")
    };
    let out = binary("check-config");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "check-config fails on errors: {stdout}{stderr}");
    for problem in &expected {
        assert!(stdout.contains(problem.as_str()), "missing from check-config's output:\n{problem}\n--- stdout:\n{stdout}");
    }
    assert!(stdout.contains("state database: migrated") && stdout.contains("instance lock"), "{stdout}");
    assert_eq!(
        stderr,
        "rowhook: check-config found 7 errors, listed above: `rowhook run` refuses to start until they are fixed\n",
        "{stdout}"
    );
    assert!(!format!("{stdout}{stderr}").contains("partial-pw"));

    let out = binary("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.starts_with("rowhook: the source database and the rules are not ready for rowhook (7 errors, 1 warning):"), "{stderr}");
    for problem in &expected {
        assert!(stderr.contains(problem.as_str()), "missing from run's message:\n{problem}\n--- stderr:\n{stderr}");
    }
}

#[actix_rt::test]
async fn turning_the_binlog_on_needs_a_restart() {
    let server = MariaDb::start_private(&["--skip-log-bin"]);
    let app = TestDb::on(&server, "binlog_off").await;
    let problems = refused(&test_config(&app.url)).await;
    assert_eq!(problems.0, [Problem::BinlogOff], "{problems}");
    let report = problems.to_string();
    assert!(
        report.contains(
            "1. error: the binlog is off (log_bin = OFF)\n     fix: add log_bin = mysql-bin (and a server_id) in the server's config \
             file (my.cnf: [mariadbd] on MariaDB, [mysqld] on MySQL), then restart the server"
        ),
        "{report}"
    );
    assert!(report.ends_with("\n     server restart: needed"), "{report}");
}

#[actix_rt::test]
async fn column_names_missing_from_the_binlog_are_a_warning_only() {
    let server = MariaDb::start_private(&["--binlog-row-metadata=MINIMAL"]);
    let app = TestDb::on(&server, "no_metadata").await;
    let checked = check(&test_config(&app.url)).await.expect("rowhook works without binlog_row_metadata=FULL");
    assert_eq!(checked.warnings, [Problem::NoRowMetadata(Some("MINIMAL".into()))]);
    assert!(!checked.server.full_row_metadata);

    let out = std::process::Command::new(crate::support::rowhook_bin())
        .args(["check-config", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/rowhook.toml")])
        .env("ROWHOOK__SOURCE__URL", &app.url)
        .env("ROWHOOK__LOG__LEVEL", "warn")
        .output()
        .expect("run rowhook check-config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("column names from information_schema; 6 rules on 3 tables"), "{stdout}");
    assert!(stdout.contains("1. warning: binlog_row_metadata is MINIMAL"), "{stdout}");
    assert!(stdout.contains("SET GLOBAL binlog_row_metadata = 'FULL'"), "{stdout}");
}

#[actix_rt::test]
async fn a_user_without_replication_grant_is_told_what_to_grant() {
    let db = TestDb::new("grants").await;
    let mut root = mysql_async::Conn::from_url(mariadb::shared().root_url()).await.unwrap();
    let user = format!("nogrant_{}", std::process::id());
    root.query_drop(format!("CREATE USER IF NOT EXISTS '{user}'@'%'")).await.unwrap();
    root.query_drop(format!("GRANT SELECT ON `{}`.* TO '{user}'@'%'", db.name)).await.unwrap();
    let url = format!("mysql://{user}@127.0.0.1:{}/{}", mariadb::shared().port, db.name);
    let problems = refused(&test_config(&url)).await;
    let user = format!("'{user}'@'%'");
    assert_eq!(problems.0, [Problem::MissingGrant { user: user.clone(), missing: vec!["REPLICATION SLAVE", "REPLICATION CLIENT"] }]);
    assert!(problems.to_string().contains(&format!("fix: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {user};")), "{problems}");

    // With REPLICATION SLAVE alone, REPLICATION CLIENT is still missing.
    root.query_drop(format!("GRANT REPLICATION SLAVE ON *.* TO {user}")).await.unwrap();
    let problems = refused(&test_config(&url)).await;
    assert_eq!(problems.0, [Problem::MissingGrant { user: user.clone(), missing: vec!["REPLICATION CLIENT"] }]);
    root.query_drop(format!("GRANT REPLICATION CLIENT ON *.* TO {user}")).await.unwrap();
    check(&test_config(&url)).await.expect("both grants are enough");
}

#[actix_rt::test]
async fn rules_are_checked_against_the_live_schema() {
    let db = TestDb::new("rules").await;
    let mut config = test_config(&db.url);
    config.events[0].fields.insert("mood".into(), "no_such_column".into());
    config.events[0].fields.insert("sbject".into(), "sbject".into());
    config.events[5].table = "nots".into();
    let problems = refused(&config).await;
    let said: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        said,
        [
            "events rule 1 (thread.created): table `threads` has no column `no_such_column`",
            "events rule 1 (thread.created): table `threads` has no column `sbject`",
            format!("events rule 6 (note.added): table `nots` does not exist in database `{}`", db.name).as_str(),
        ]
    );
    assert_eq!(problems.0[1].fix(), "did you mean `subject`? Fix the rule");
    assert_eq!(problems.0[2].fix(), "did you mean `notes`? Fix the rule's `table`");

    check(&test_config(&db.url)).await.expect("the shipped rules fit the reference schema");
}

#[actix_rt::test]
async fn an_unreachable_database_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = check(&test_config(&format!("mysql://root@127.0.0.1:{port}/helpdesk"))).await.err().expect("refused");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
}
