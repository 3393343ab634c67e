//! Item usage end to end: two devices of one account on a real server
//! (`openk serve`). A use on one device (`get`, `show --reveal`) reaches the
//! other at their syncs: `show` says how often and when, `ls --sort used`
//! orders by it; a use never syncs by itself and never makes a version.

use crate::sync::{Serve, registered};
use crate::util::TestEnv;

const EMAIL: &str = "usage@example.org";

fn login(a: &TestEnv, server: &Serve) -> TestEnv {
    let b = TestEnv::new();
    b.cmd([
        "login",
        "--server",
        &server.url(),
        "--email",
        EMAIL,
        "--secret-key",
        a.secret_key(),
        "--device-name",
        "laptop",
    ])
    .ok();
    b
}

/// The `used` row of `openk show`.
fn used_row(show: &str) -> String {
    show.lines()
        .find_map(|l| l.trim_start().strip_prefix("used "))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no used row in:\n{show}"))
}

#[test]
fn a_use_on_one_device_shows_on_the_other_after_both_sync() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = registered(&server, EMAIL);
    for name in ["GitHub", "Bank", "Wifi"] {
        a.add(&[
            "login",
            "--name",
            name,
            "--username",
            "me",
            "--password",
            "pw-1",
        ]);
    }
    let b = login(&a, &server);
    b.run(&["sync"]);
    assert_eq!(used_row(&b.run(&["show", "GitHub"])), "never");

    // A uses GitHub once: printing it counts, and nothing syncs by itself.
    assert_eq!(a.run(&["get", "GitHub"]).trim_end(), "pw-1");
    a.run(&["show", "GitHub"]); // no --reveal: not a use
    let here = a.json(&["show", "GitHub"]);
    assert_eq!(here["use_count"], 1, "{here}");
    assert_eq!(here["version"], 1, "a use makes no version");
    b.run(&["sync"]);
    assert_eq!(
        b.json(&["show", "GitHub"])["use_count"],
        0,
        "not synced yet"
    );

    // Both sync: B sees the use.
    let out = a.json(&["sync"]);
    assert_eq!(out["usage"]["uploaded"], true, "{out}");
    assert_eq!(out["vaults"][0]["pushed"], 0, "{out}");
    let out = b.json(&["sync"]);
    assert_eq!(out["usage"]["received"], 1, "{out}");
    let used = used_row(&b.run(&["show", "GitHub"]));
    assert!(used.starts_with("once, last 20"), "{used}");
    assert!(used.ends_with(" UTC (just now)"), "{used}");
    let json = b.json(&["show", "GitHub"]);
    assert_eq!(json["use_count"], 1, "{json}");
    assert!(
        json["last_used_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{json}"
    );
    assert_eq!(
        b.json(&["show", "Bank"])["last_used_at"],
        serde_json::Value::Null
    );

    // `ls --sort used`: most recently used first, never used last (by name).
    assert_eq!(b.ls_names(&["--sort", "used"]), ["GitHub", "Bank", "Wifi"]);
    assert_eq!(
        b.ls_names(&[]),
        ["Bank", "GitHub", "Wifi"],
        "by name by default"
    );
    let table = b.run(&["ls", "--sort", "used"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("USED"), "{table}");
    assert!(
        lines[1].contains("GitHub") && lines[1].contains("1× just now"),
        "{table}"
    );
    assert!(
        lines[2].contains("Bank") && lines[2].contains("never"),
        "{table}"
    );

    // B reveals Wifi: after both sync, A orders Wifi first and counts both.
    std::thread::sleep(std::time::Duration::from_millis(5));
    b.run(&["show", "Wifi", "--reveal"]);
    b.run(&["sync"]);
    a.run(&["sync"]);
    assert_eq!(a.ls_names(&["--sort", "used"]), ["Wifi", "GitHub", "Bank"]);
    let items = a.json(&["ls", "--sort", "used"])["items"].clone();
    assert_eq!(items[0]["use_count"], 1, "{items}");
    assert_eq!(items[2]["use_count"], 0, "{items}");
    a.run(&["get", "Wifi", "username"]);
    assert_eq!(
        a.json(&["show", "Wifi"])["use_count"],
        2,
        "A's use and B's add up"
    );
    assert_eq!(a.json(&["show", "Wifi"])["version"], 1);

    // The other orders, and a bad one.
    assert_eq!(
        a.ls_names(&["--sort", "created"]),
        ["Wifi", "Bank", "GitHub"]
    );
    assert_eq!(
        a.ls_names(&["--sort", "updated"]),
        ["Wifi", "Bank", "GitHub"]
    );
    let run = a.cmd(["ls", "--sort", "often"]).code(2);
    run.stderr_has("name, used, updated, created");
}
