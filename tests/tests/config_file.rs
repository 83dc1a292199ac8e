//! The config file as edged reads it (issue 15): bytes that are not UTF-8
//! are a config error with their line (`edged --check`, `edgectl config
//! check`, a reload), a config anyone can change is warned about, and a
//! reload cannot be fooled by a writer that stalls half way: the file must
//! have settled, and a file that drops more than `reload_max_shrink_percent`
//! of its prefixes is refused unless forced.

use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use edge_tests::topology::*;

fn write_config(lab: &EdgeLab, text: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&path, text).unwrap();
    path
}

/// `edged --check --config FILE`: (exit code, stderr).
fn edged_check(config: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(workspace_bin("edged"))
        .arg("--config")
        .arg(config)
        .arg("--check")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn prefix_count(edged: &Edged) -> usize {
    edged.ctl_ok(&["prefix", "list"]).as_array().unwrap().len()
}

#[test]
fn a_config_that_is_not_utf8_is_refused_with_its_line() {
    let lab = EdgeLab::build("utf8");
    let config = write_config(&lab, LAB_CONFIG.as_bytes());
    let (mut edged, log) = Edged::start_logged(&lab.edge, &config, &lab.pin_path(), &[]);
    let before = prefix_count(&edged);

    // A comment in Latin-1 at the end: line and column of the bad byte.
    let line = LAB_CONFIG.lines().count() + 2;
    let mut bad = LAB_CONFIG.as_bytes().to_vec();
    bad.extend_from_slice(b"\n# caf\xe9 au lait\n");
    std::fs::write(&config, &bad).unwrap();
    let want = format!(
        "line {line}: column 6 (byte {} of the file, 0xe9): not UTF-8",
        LAB_CONFIG.len() + 6
    );

    let (code, stderr) = edged_check(&config);
    assert_eq!(code, Some(2), "edged --check: {stderr}");
    assert!(stderr.contains(&want), "edged --check: {stderr}");

    let o = edged.ctl(&["config", "check", config.to_str().unwrap()]);
    assert_eq!(o.code, Some(2), "edgectl config check: {o:?}");
    assert_eq!(o.json["problems"][0]["line"], line, "{o:?}");
    let text = std::process::Command::new(workspace_bin("edgectl"))
        .args(["config", "check", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert_eq!(text.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&want), "edgectl config check: {stderr}");

    // A reload: rejected (invalid, exit 2) with the line, the running
    // config kept; by SIGHUP: the same, in the log.
    let o = edged.ctl(&["config", "reload"]);
    assert_eq!(
        (o.code, &o.json["kind"]),
        (Some(2), &"invalid".into()),
        "{o:?}"
    );
    assert!(o.json["error"].as_str().unwrap().contains(&want), "{o:?}");
    edged.hup();
    log.wait_for("SIGHUP: reload rejected", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no SIGHUP rejection: {log:?}"));
    // The problems follow on lines of their own: one for the edgectl
    // reload ("request failed"), one for the SIGHUP.
    let t = Instant::now();
    while log.matching(&want).len() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "the SIGHUP rejection names no line: {log:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(prefix_count(&edged), before);
    assert_lab_streams_arrive(&lab, 200);

    // Fixed: reloads again.
    std::fs::write(&config, LAB_CONFIG).unwrap();
    edged.ctl_ok(&["config", "reload"]);
    edged.teardown();
    std::fs::remove_file(config).unwrap();
}

/// A TOML error hides no other problem: `edged --check` and `edgectl
/// config check` list the same problems, sorted by line, and exit with 2.
#[test]
fn edged_check_and_edgectl_config_check_list_the_same_problems() {
    let text = LAB_CONFIG
        .replacen("xdp_mode = \"auto\"", "xdp_mode = auto", 1)
        .replacen("encap_ttl = 64", "encap_ttl = 0", 1)
        .replacen(
            "mac = \"02:00:00:00:0b:01\"",
            "mac = \"02:00:00:00:0b:01\"\ncolour = \"red\"",
            1,
        );
    let config = std::env::temp_dir().join(format!("edge-check-{}.toml", std::process::id()));
    std::fs::write(&config, &text).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;

    let (code, stderr) = edged_check(&config);
    assert_eq!(code, Some(2), "edged --check: {stderr}");
    let from_edged: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().starts_with("line ").then_some(l.trim()))
        .collect();
    let out = std::process::Command::new(workspace_bin("edgectl"))
        .args(["config", "check", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}: ", config.display());
    let from_edgectl: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect();
    assert_eq!(from_edged, from_edgectl);
    assert_eq!(from_edgectl.len(), 3, "{stderr}");
    let lines: Vec<String> = [
        line_of("xdp_mode = auto"),
        line_of("encap_ttl = 0"),
        line_of("colour"),
    ]
    .iter()
    .map(|n| format!("line {n}: "))
    .collect();
    for (problem, line) in from_edgectl.iter().zip(&lines) {
        assert!(
            problem.starts_with(line.as_str()),
            "{problem} (want {line}): {stderr}"
        );
    }
    assert!(
        from_edgectl[1].contains("encap_ttl 0 is outside 1-255"),
        "{stderr}"
    );
    assert!(
        from_edgectl[2].contains("unknown field `colour`"),
        "{stderr}"
    );
    std::fs::remove_file(config).unwrap();
}

#[test]
fn a_config_anyone_can_change_is_warned_about() {
    let lab = EdgeLab::build("wwdir");
    let dir = std::env::temp_dir().join(format!("{}-etc", lab.edge));
    std::fs::create_dir_all(&dir).unwrap();
    let chmod = |p: &Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let config = dir.join("edge.toml");
    std::fs::write(&config, LAB_CONFIG).unwrap();
    chmod(&config, 0o644);
    let warning = format!(
        "is in a world-writable directory {} (mode 0777, no sticky bit)",
        dir.display()
    );

    chmod(&dir, 0o755);
    let (code, stderr) = edged_check(&config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("world-writable"), "{stderr}");

    // The directory world-writable: anyone can replace the file.
    chmod(&dir, 0o777);
    let (code, stderr) = edged_check(&config);
    assert_eq!(code, Some(0), "a warning, not a refusal: {stderr}");
    assert!(
        stderr.contains(&warning) && stderr.contains(" WARN "),
        "{stderr}"
    );
    let (mut edged, log) = Edged::start_logged(&lab.edge, &config, &lab.pin_path(), &[]);
    assert!(!log.matching(&warning).is_empty(), "edged start: {log:?}");
    // With the sticky bit (as /tmp) only the file's owner can replace it.
    chmod(&dir, 0o1777);
    let (_, stderr) = edged_check(&config);
    assert!(!stderr.contains("world-writable"), "{stderr}");
    // The file itself world-writable: warned at the next reload too.
    chmod(&config, 0o666);
    edged.ctl_ok(&["config", "reload"]);
    let line = log
        .wait_for("edge.toml is world-writable", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no warning at the reload: {log:?}"));
    assert!(line.contains(" WARN "), "{line}");
    edged.teardown();
    chmod(&dir, 0o755);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The lab config plus 14 more prefixes (20 in all), with a settle time of
/// `settle_ms`; and the same file cut after the first two extra prefixes
/// (8 prefixes: 60% fewer), as a writer in two halves leaves it half way.
fn twenty_prefixes(settle_ms: u64) -> (String, usize) {
    let mut text = LAB_CONFIG.replace(
        "xdp_mode = \"auto\"",
        &format!("xdp_mode = \"auto\"\nreload_settle_ms = {settle_ms}"),
    );
    assert!(text.contains("reload_settle_ms"));
    let mut cut = 0;
    for i in 0..14 {
        if i == 2 {
            cut = text.len();
        }
        text += &format!(
            "\n[[prefixes]]\nprefix = \"198.18.{i}.0/24\"\nregistration = \"bulk\"\npop = \"pop-b\"\n"
        );
    }
    (text, cut)
}

#[test]
fn a_reload_during_a_stalled_write_is_refused_unless_forced() {
    let lab = EdgeLab::build("stall");
    let (whole, cut) = twenty_prefixes(300);
    let config = write_config(&lab, whole.as_bytes());
    let (mut edged, log) = Edged::start_logged(&lab.edge, &config, &lab.pin_path(), &[]);
    assert_eq!(prefix_count(&edged), 20);

    // A writer stalling 100 ms between its halves, less than the settle
    // time: a reload asked for right after the first half waits and
    // applies the whole file.
    std::fs::write(&config, &whole[..cut]).unwrap();
    let writer = {
        let (config, rest) = (config.clone(), whole[cut..].to_string());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&config)
                .unwrap();
            f.write_all(rest.as_bytes()).unwrap();
        })
    };
    let t = Instant::now();
    edged.ctl_ok(&["config", "reload"]);
    writer.join().unwrap();
    assert_eq!(
        prefix_count(&edged),
        20,
        "the whole file, after {:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );

    // A writer stalling longer than the settle time (truncate, first half,
    // then nothing while the reloads below run): the settled half drops 12
    // of the file's 20 prefixes, more than half: refused, by edgectl and by
    // SIGHUP, the running config kept.
    let mut file = std::fs::File::create(&config).unwrap();
    file.write_all(&whole.as_bytes()[..cut]).unwrap();
    file.flush().unwrap();
    let o = edged.ctl(&["config", "reload"]);
    assert_eq!(
        (o.code, &o.json["kind"]),
        (Some(2), &"invalid".into()),
        "{o:?}"
    );
    let error = o.json["error"].as_str().unwrap();
    for want in [
        "registers 8 prefixes, 12 fewer than the running config's 20 (60%, more than reload_max_shrink_percent = 50)",
        "Write configs atomically",
        "edgectl config reload --force",
    ] {
        assert!(error.contains(want), "{want:?} not in {error}");
    }
    edged.hup();
    let line = log
        .wait_for("SIGHUP: reload rejected", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no SIGHUP rejection: {log:?}"));
    assert!(line.contains("SIGHUP cannot force"), "{line}");
    assert_eq!(prefix_count(&edged), 20, "the running config is kept");
    assert_lab_streams_arrive(&lab, 200);

    // Forced: the half applies (the operator said so).
    let r = edged.ctl_ok(&["config", "reload", "--force"]);
    assert!(r["changes"]["removed"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(prefix_count(&edged), 8);

    // The writer finishes: the file grows back, which needs no force.
    file.write_all(&whole.as_bytes()[cut..]).unwrap();
    drop(file);
    edged.ctl_ok(&["config", "reload"]);
    assert_eq!(prefix_count(&edged), 20);
    edged.teardown();
    std::fs::remove_file(config).unwrap();
}

/// `edged --check` does not fail on interfaces it cannot see (the file may
/// be checked elsewhere than where it runs) but warns about each one, so
/// that a start sure to fail (`interface NAME not found`) is seen coming;
/// in the namespace of the lab, where they exist, it says nothing.
#[test]
fn edged_check_warns_about_interfaces_missing_here() {
    let lab = EdgeLab::build("ckif");
    let config = write_config(&lab, LAB_CONFIG.as_bytes());
    // The test's own namespace has none of the lab's ports.
    let (code, stderr) = edged_check(&config);
    assert_eq!(code, Some(0), "a warning, not a refusal: {stderr}");
    for port in ["peer0", "peer1", "bba0", "bbb0", "tr0"] {
        assert!(
            stderr.contains(&format!(
                "interface {port} does not exist in this network namespace"
            )),
            "{port}: {stderr}"
        );
    }
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", lab.edge))
        .arg(workspace_bin("edged"))
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("does not exist"), "{stderr}");
    std::fs::remove_file(config).unwrap();
}
