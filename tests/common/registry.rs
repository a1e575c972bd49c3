//! Real registries for tests: Debian's `docker-registry` (the CNCF distribution registry)
//! on a 127.0.0.1 port of the test's own, open or behind htpasswd. The daemon treats
//! 127.0.0.0/8 registries as plain-http ones, so no daemon setting is needed. Dropping a
//! [`Registry`] stops it and removes every image pushed to it or pulled from it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const USER: &str = "masgen";
pub const PASSWORD: &str = "registry-pass-must-never-be-written";

pub struct Registry {
    /// `127.0.0.1:PORT`
    pub host: String,
    child: Child,
    dir: tempfile::TempDir,
    private: bool,
    pushed: Mutex<Vec<String>>,
}

/// Whether `docker-registry` is installed; without it a test skips, or fails under
/// MASGEN_REQUIRE_DOCKER=1 (scripts/test.sh installs it).
fn installed(test: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", "command -v docker-registry && command -v htpasswd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("MASGEN_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("{test}: docker-registry or htpasswd is not installed (scripts/test.sh installs Debian's docker-registry and apache2-utils)");
        }
        eprintln!("SKIPPED {test}: docker-registry or htpasswd is not installed (set MASGEN_REQUIRE_DOCKER=1 to make this a failure)");
    }
    ok
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Start a registry, private (htpasswd: [`USER`], [`PASSWORD`]) or open.
    pub fn start(test: &str, private: bool) -> Option<Registry> {
        if !super::docker::docker_available(test) || !installed(test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if private {
            let o = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .unwrap();
            std::fs::write(dir.path().join("htpasswd"), &o.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: masgen-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let r = Registry {
            host,
            child,
            dir,
            private,
            pushed: Mutex::new(Vec::new()),
        };
        r.wait_ready();
        if private {
            r.docker(&["login", "-u", USER, "-p", PASSWORD, &r.host]);
        }
        Some(r)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(&self.host) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut head = [0u8; 12];
                if s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry on {} did not come up", self.host);
    }

    /// The docker CLI with a config of the registry's own (its login never touches the
    /// user's config).
    fn docker(&self, args: &[&str]) -> String {
        let o = Command::new("docker")
            .arg("--config")
            .arg(self.dir.path().join("cli"))
            .args(args)
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// `HOST/masgen-test/NAME`
    pub fn image(&self, name: &str) -> String {
        format!("{}/masgen-test/{name}", self.host)
    }

    /// Build `dockerfile` (no context) as `NAME`, push it, and remove the local tag, so
    /// that only the registry has it. Returns the reference.
    pub fn push(&self, name: &str, dockerfile: &str) -> String {
        let reference = self.image(name);
        let df = self
            .dir
            .path()
            .join(format!("Dockerfile.{}", name.replace([':', '/'], "_")));
        // Its own label, right after FROM: no two tests' images share an ID or an
        // intermediate image of the classic builder (removing one test's image removes
        // its untagged parents, which another test's build could be using as its cache).
        let (from, rest) = dockerfile.split_once('\n').unwrap_or((dockerfile, ""));
        let unique = format!("{from}\nLABEL masgen.test.image={reference}\n{rest}");
        std::fs::write(&df, unique).unwrap();
        let empty = self.dir.path().join("empty-context");
        std::fs::create_dir_all(&empty).unwrap();
        self.docker(&[
            "build",
            "-q",
            // A build that fails leaves no intermediate container behind.
            "--force-rm",
            "-t",
            &reference,
            "-f",
            df.to_str().unwrap(),
            empty.to_str().unwrap(),
        ]);
        self.pushed.lock().unwrap().push(reference.clone());
        self.docker(&["push", &reference]);
        self.docker(&["rmi", &reference]);
        reference
    }

    /// A docker config folder whose config.json holds `json`.
    pub fn config_dir(&self, json: &str) -> PathBuf {
        let d = self
            .dir
            .path()
            .join(format!("user-config-{}", fastrand::u32(..)));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.json"), json).unwrap();
        d
    }

    /// A config with `auths` for this registry.
    pub fn auths_config(&self, password: &str) -> PathBuf {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        self.config_dir(&format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            self.host
        ))
    }

    /// A credential helper `docker-credential-NAME` in a folder of its own (for PATH) that
    /// logs each call to `calls.log` beside it; and a config naming it for this registry.
    pub fn helper_config(&self, name: &str) -> (PathBuf, PathBuf) {
        let bin = self.dir.path().join(format!("bin-{name}"));
        std::fs::create_dir_all(&bin).unwrap();
        let script = format!(
            "#!/bin/sh\nserver=$(cat)\necho \"$1 $server\" >> {log}\n[ \"$1\" = get ] || exit 1\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            log = bin.join("calls.log").display()
        );
        let path = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = self.config_dir(&format!(
            r#"{{"credHelpers":{{"{}":"{name}"}}}}"#,
            self.host
        ));
        (bin, config)
    }

    pub fn is_private(&self) -> bool {
        self.private
    }
}

/// PATH with `dir` first.
pub fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reference in self.pushed.lock().unwrap().iter() {
            let _ = Command::new("docker")
                .args(["rmi", "-f", reference])
                .output();
        }
    }
}
