//! The grants docs/source-database.md gives (and the README repeats) are
//! enough: a user with exactly those migrates, passes `check-config` and
//! delivers, with rowhook's tables in the application's database and in a
//! database of their own. Nothing wider than the docs say is granted.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_async::prelude::*;

use crate::rowhook::{test_config, InProcess};
use crate::support::{mariadb, Receiver};

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `GRANT` statements of the first ```sql block after the line `heading`
/// (or of every block, without a heading), trailing comments cut off.
fn grants(doc: &str, heading: Option<&str>) -> Vec<String> {
    let text = match heading {
        Some(h) => &doc[doc.find(&format!("\n{h}\n")).unwrap_or_else(|| panic!("no heading {h:?}"))..],
        None => doc,
    };
    let mut grants = Vec::new();
    let mut in_sql = false;
    for line in text.lines() {
        match line.trim() {
            "```sql" => in_sql = true,
            "```" if in_sql => {
                in_sql = false;
                if heading.is_some() {
                    break;
                }
            }
            l if in_sql && l.starts_with("GRANT ") => {
                grants.push(l.split(" -- ").next().unwrap().trim().to_string());
            }
            _ => {}
        }
    }
    grants
}

#[test]
fn the_readme_gives_the_grants_of_docs_source_database_md_and_none_wider() {
    let doc = grants(&read("docs/source-database.md"), Some("## The grants"));
    assert_eq!(doc.len(), 2, "{doc:#?}");
    let readme = grants(&read("README.md"), None);
    assert_eq!(readme, doc, "README.md's GRANT statements differ from docs/source-database.md's");
    let every = grants(&read("docs/source-database.md"), None);
    for grant in every.iter().chain(&readme) {
        // Only the global replication privileges are granted ON *.*.
        if grant.contains(" ON *.* ") {
            assert!(grant.starts_with("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON"), "{grant}");
        }
    }
}

static USERS: AtomicU32 = AtomicU32::new(0);

/// A new user with the doc's grants, `helpdesk` and `rowhook` replaced by
/// `app` and `state`; returns its name and its URL without a database.
async fn user_with(root: &mut mysql_async::Conn, grants: &[String], app: &str, state: &str) -> (String, String) {
    let user = format!("rh_doc_{}_{}", std::process::id(), USERS.fetch_add(1, Ordering::SeqCst));
    root.query_drop(format!("DROP USER IF EXISTS '{user}'@'%'")).await.unwrap();
    root.query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'doc-pw'")).await.unwrap();
    for grant in grants {
        let grant = grant
            .replace("'rowhook'@'%'", &format!("'{user}'@'%'"))
            .replace(" helpdesk.*", &format!(" `{app}`.*"))
            .replace(" rowhook.*", &format!(" `{state}`.*"));
        root.query_drop(grant.trim_end_matches(';')).await.unwrap_or_else(|e| panic!("{grant}: {e}"));
    }
    let server = mariadb::shared();
    (user.clone(), format!("mysql://{user}:doc-pw@127.0.0.1:{}/", server.port))
}

/// Runs rowhook as the user (`base`): migrate, check, one note of `app`
/// delivered; rowhook's tables in `state` when it is not `app`.
async fn migrate_check_deliver(base: &str, app: &str, state: &str) {
    let server = mariadb::shared();
    let source_url = format!("{base}{app}");
    let state_url = (state != app).then(|| format!("{base}{state}"));
    let mut config = test_config(&source_url);
    config.state.url = state_url;
    let store = rowhook::state::store::Store::new(config.state_url()).unwrap();
    store.migrate().await.expect("rowhook migrate as the documented user");
    rowhook::daemon::check(&config).await.expect("check-config as the documented user");

    let receiver = Receiver::start().await;
    let mut root_state = mysql_async::Conn::from_url(server.url(state)).await.unwrap();
    root_state
        .exec_drop(
            "INSERT INTO webhooks (url, events, secret, is_active) VALUES (?, '[\"note.added\"]', ?, 1)",
            (receiver.url(), rowhook::delivery::signing::generate_secret()),
        )
        .await
        .unwrap();
    let rowhook = InProcess::start(config).await;
    let mut root_app = mysql_async::Conn::from_url(server.url(app)).await.unwrap();
    root_app.query_drop("INSERT INTO notes (thread_id, user_id, content) VALUES (1, 7, 'granted')").await.unwrap();
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    rowhook.stop().await.expect("clean stop");
    assert_eq!(got.len(), 1, "one note.added delivered");
    assert_eq!(got[0].json()["type"], "note.added");
}

#[actix_rt::test]
async fn the_grants_of_docs_source_database_md_are_enough() {
    let doc = read("docs/source-database.md");
    let server = mariadb::shared();
    let mut root = mysql_async::Conn::from_url(server.root_url()).await.unwrap();

    // rowhook's tables in the application's database (the default).
    let app = server.fresh_database("grants_doc").await;
    let (user, base) = user_with(&mut root, &grants(&doc, Some("## The grants")), &app, "-").await;
    migrate_check_deliver(&base, &app, &app).await;
    root.query_drop(format!("DROP USER '{user}'@'%'")).await.unwrap();

    // rowhook's tables in a database of their own ([state] url): SELECT alone on the application's.
    let app = server.fresh_database("grants_doc_app").await;
    let state = format!("grants_doc_state_{}", std::process::id());
    root.query_drop(format!("CREATE DATABASE `{state}` CHARACTER SET utf8mb4")).await.unwrap();
    let (user, base) = user_with(&mut root, &grants(&doc, Some("## rowhook's tables in another database")), &app, &state).await;
    let app_grants: Vec<String> = root.query(format!("SHOW GRANTS FOR '{user}'@'%'")).await.unwrap();
    assert!(
        app_grants.iter().any(|g| g.contains(&format!("GRANT SELECT ON `{app}`.*"))),
        "the application's database gets SELECT only: {app_grants:#?}"
    );
    migrate_check_deliver(&base, &app, &state).await;
    root.query_drop(format!("DROP USER '{user}'@'%'")).await.unwrap();
}
