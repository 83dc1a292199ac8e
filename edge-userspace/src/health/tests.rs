use tokio::net::TcpListener;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn first_result_decides_then_rise_and_fall_count() {
    let t0 = Instant::now();
    let mut h = Health::new(2, 3, t0);
    assert!(h.healthy(), "up before any probe");
    // First failure: down at once.
    assert_eq!(h.record(None, t0 + ms(1)), Some(false));
    assert_eq!(h.status().last_change, t0 + ms(1));
    // One success is not enough (rise 2), the second is.
    assert_eq!(h.record(Some(ms(10)), t0 + ms(2)), None);
    assert_eq!(h.record(Some(ms(10)), t0 + ms(3)), Some(true));
    assert_eq!(h.status().last_change, t0 + ms(3));
    // Two failures, a success (resets the streak), then three failures.
    assert_eq!(h.record(None, t0 + ms(4)), None);
    assert_eq!(h.record(None, t0 + ms(5)), None);
    assert_eq!(h.record(Some(ms(10)), t0 + ms(6)), None);
    assert_eq!(h.record(None, t0 + ms(7)), None);
    assert_eq!(h.record(None, t0 + ms(8)), None);
    assert_eq!(h.record(None, t0 + ms(9)), Some(false));
    assert!(!h.healthy());
    assert_eq!(h.status().last_change, t0 + ms(9));
    // A success between failures resets the rise count too.
    assert_eq!(h.record(Some(ms(10)), t0 + ms(10)), None);
    assert_eq!(h.record(None, t0 + ms(11)), None);
    assert_eq!(h.record(Some(ms(10)), t0 + ms(12)), None);
    assert_eq!(h.record(Some(ms(10)), t0 + ms(13)), Some(true));

    let mut first_ok = Health::new(2, 3, t0);
    assert_eq!(first_ok.record(Some(ms(1)), t0), None, "already up");
    assert!(first_ok.healthy());
}

#[test]
fn srtt_is_an_ewma_min_and_loss_cover_the_window() {
    let t0 = Instant::now();
    let mut h = Health::new(2, 3, t0);
    h.record(Some(ms(80)), t0);
    assert_eq!(h.status().srtt, Some(ms(80)));
    h.record(Some(ms(160)), t0);
    // 7/8 * 80 + 1/8 * 160 = 90.
    assert_eq!(h.status().srtt, Some(ms(90)));
    h.record(None, t0);
    assert_eq!(
        h.status().srtt,
        Some(ms(90)),
        "failures leave the RTT alone"
    );
    let s = h.status();
    assert_eq!(s.min_rtt, Some(ms(80)));
    assert!((s.loss - 1.0 / 3.0).abs() < 1e-9, "{}", s.loss);
    // After WINDOW more results the old minimum and failure are gone.
    for i in 0..WINDOW as u64 {
        h.record(if i % 4 == 0 { None } else { Some(ms(100 + i)) }, t0);
    }
    let s = h.status();
    assert_eq!(s.min_rtt, Some(ms(101)));
    assert!((s.loss - 5.0 / 20.0).abs() < 1e-9, "{}", s.loss);
    // Converges toward a steady RTT.
    for _ in 0..100 {
        h.record(Some(ms(20)), t0);
    }
    let srtt = h.status().srtt.unwrap();
    assert!(srtt >= ms(20) && srtt < ms(21), "{srtt:?}");
}

#[test]
fn icmp_messages_are_matched_to_our_echo() {
    let payload = b"edge-probe12345678";
    let mut reply = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    reply.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
    reply.extend_from_slice(payload);
    assert_eq!(
        read_icmp(false, &reply, 0x1234, 7, payload),
        Icmp::Reply { payload_ok: true }
    );
    assert_eq!(read_icmp(false, &reply, 0x1234, 8, payload), Icmp::Other);
    assert_eq!(
        read_icmp(false, &reply, 0x1234, 7, b"other"),
        Icmp::Reply { payload_ok: false }
    );
    // Our own request (seen on loopback) is not a reply.
    let mut request = reply.clone();
    request[20] = 8;
    assert_eq!(read_icmp(false, &request, 0x1234, 7, payload), Icmp::Other);
    // A destination unreachable quoting our request.
    let mut unreach = reply[..20].to_vec();
    unreach.extend_from_slice(&[3, 1, 0, 0, 0, 0, 0, 0]);
    unreach.extend_from_slice(&request[..28]);
    assert_eq!(
        read_icmp(false, &unreach, 0x1234, 7, payload),
        Icmp::Error(3, 1)
    );
    assert_eq!(read_icmp(false, &unreach, 0x1234, 9, payload), Icmp::Other);
    // IPv6: no IP header on the reply; 40 bytes of quoted header in errors.
    let mut reply6 = vec![129, 0, 0, 0, 0x12, 0x34, 0, 7];
    reply6.extend_from_slice(payload);
    assert_eq!(
        read_icmp(true, &reply6, 0x1234, 7, payload),
        Icmp::Reply { payload_ok: true }
    );
    let mut unreach6 = vec![1, 3, 0, 0, 0, 0, 0, 0];
    unreach6.extend_from_slice(&[0x60; 40]);
    unreach6.extend_from_slice(&[128, 0, 0, 0, 0x12, 0x34, 0, 7]);
    assert_eq!(
        read_icmp(true, &unreach6, 0x1234, 7, payload),
        Icmp::Error(1, 3)
    );
    assert_eq!(read_icmp(true, &[129, 0], 0x1234, 7, payload), Icmp::Other);
}

#[test]
fn checksum_matches_rfc1071() {
    // RFC 1071's example words sum to 0xddf2 (one's complement: 0x220d).
    assert_eq!(
        checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        0x220d
    );
    let mut msg = vec![8, 0, 0, 0, 1, 2, 3, 4, 5];
    let sum = checksum(&msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(checksum(&msg), 0);
}

fn probe(kind: ProbeKind, address: &str) -> Probe {
    Probe {
        kind,
        address: address.parse().unwrap(),
        device: None,
        interval: ms(100),
        timeout: ms(300),
        rise: 2,
        fall: 3,
    }
}

/// A TCP port on 127.0.0.1 nobody listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn tcp_probe_succeeds_and_is_refused() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let rtt = probe_once(&probe(ProbeKind::Tcp { port }, "127.0.0.1"))
        .await
        .unwrap();
    assert!(rtt < ms(300), "{rtt:?}");
    drop(l);
    let err = probe_once(&probe(ProbeKind::Tcp { port }, "127.0.0.1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Refused), "{err:?}");
    let port = closed_port().await;
    let err = probe_once(&probe(ProbeKind::Tcp { port }, "::1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Refused), "{err:?}");
}

/// An HTTP server on 127.0.0.1 answering every request with `reply`
/// (after `delay`); counts the requests it saw.
async fn http_server(reply: &'static [u8], delay: Duration) -> (u16, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.ends_with(b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&buf).into_owned()).await;
                tokio::time::sleep(delay).await;
                let _ = s.write_all(reply).await;
            });
        }
    });
    (port, rx)
}

fn http_probe(port: u16, status: u16) -> Probe {
    probe(
        ProbeKind::Http {
            port,
            path: "/health?full=1".into(),
            host: Some("pop.example".into()),
            status,
        },
        "127.0.0.1",
    )
}

#[tokio::test]
async fn http_probe_checks_the_status() {
    let (port, mut requests) =
        http_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ms(0)).await;
    let rtt = probe_once(&http_probe(port, 200)).await.unwrap();
    assert!(rtt < ms(300));
    let request = requests.recv().await.unwrap();
    assert!(
        request.starts_with("GET /health?full=1 HTTP/1.1\r\n")
            && request.contains("\r\nHost: pop.example\r\n"),
        "{request}"
    );
    let err = probe_once(&http_probe(port, 204)).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProbeError::BadStatus {
                got: 200,
                want: 204
            }
        ),
        "{err:?}"
    );

    let (port, _r) = http_server(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", ms(0)).await;
    let err = probe_once(&http_probe(port, 200)).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProbeError::BadStatus {
                got: 503,
                want: 200
            }
        ),
        "{err:?}"
    );
    // The status line alone is enough (headers still coming).
    let (port, _r) = http_server(b"HTTP/1.0 200 OK\r\nX-Slow: ", ms(0)).await;
    probe_once(&http_probe(port, 200)).await.unwrap();
}

#[tokio::test]
async fn http_probe_errors() {
    let (port, _r) = http_server(b"SSH-2.0-OpenSSH\r\n", ms(0)).await;
    let err = probe_once(&http_probe(port, 200)).await.unwrap_err();
    assert!(matches!(err, ProbeError::BadResponse(_)), "{err:?}");
    let (port, _r) = http_server(b"", ms(0)).await;
    let err = probe_once(&http_probe(port, 200)).await.unwrap_err();
    assert!(matches!(err, ProbeError::BadResponse(_)), "{err:?}");
    // Answers after the timeout.
    let (port, _r) = http_server(b"HTTP/1.1 200 OK\r\n\r\n", ms(1000)).await;
    let started = Instant::now();
    let err = probe_once(&http_probe(port, 200)).await.unwrap_err();
    assert!(
        matches!(err, ProbeError::Timeout(t) if t == ms(300)),
        "{err:?}"
    );
    let took = started.elapsed();
    assert!(took >= ms(300) && took < ms(600), "{took:?}");
    let err = probe_once(&http_probe(closed_port().await, 200))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Refused), "{err:?}");
}

/// A UDP server on `addr` answering each datagram with `answer(datagram)`
/// (`None`: no answer).
async fn udp_server(addr: &str, answer: fn(&[u8]) -> Option<Vec<u8>>) -> u16 {
    let s = UdpSocket::bind(addr).await.unwrap();
    let port = s.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            if let Some(a) = answer(&buf[..n]) {
                let _ = s.send_to(&a, from).await;
            }
        }
    });
    port
}

fn udp_probe(port: u16, address: &str) -> Probe {
    probe(
        ProbeKind::Udp {
            port,
            payload: b"edge-probe".to_vec(),
        },
        address,
    )
}

#[tokio::test]
async fn udp_probe_success_bad_and_missing_echo() {
    let port = udp_server("127.0.0.1:0", |d| Some(d.to_vec())).await;
    let rtt = probe_once(&udp_probe(port, "127.0.0.1")).await.unwrap();
    assert!(rtt < ms(300));
    let port = udp_server("[::1]:0", |d| Some(d.to_vec())).await;
    probe_once(&udp_probe(port, "::1")).await.unwrap();

    let port = udp_server("127.0.0.1:0", |d| Some(d.to_ascii_uppercase())).await;
    let err = probe_once(&udp_probe(port, "127.0.0.1")).await.unwrap_err();
    assert!(
        matches!(err, ProbeError::BadEcho { sent: 10, got: 10 }),
        "{err:?}"
    );

    let port = udp_server("127.0.0.1:0", |_| None).await;
    let err = probe_once(&udp_probe(port, "127.0.0.1")).await.unwrap_err();
    assert!(matches!(err, ProbeError::Timeout(_)), "{err:?}");

    // Nobody on the port: ICMP port unreachable, seen as refused.
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = s.local_addr().unwrap().port();
    drop(s);
    let err = probe_once(&udp_probe(port, "127.0.0.1")).await.unwrap_err();
    assert!(matches!(err, ProbeError::Refused), "{err:?}");
}

#[tokio::test]
async fn probing_an_unknown_interface_is_an_io_error() {
    let mut p = probe(ProbeKind::Tcp { port: 9 }, "127.0.0.1");
    p.device = Some("edge-nosuch0".into());
    let err = probe_once(&p).await.unwrap_err();
    assert!(matches!(err, ProbeError::Io(_)), "{err:?}");
}

/// The runner against a TCP server that goes away and comes back:
/// down after `fall` failed probes, up after `rise` good ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_follows_a_server_that_goes_and_comes_back() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let interval = ms(100);
    let mut p = probe(ProbeKind::Tcp { port: addr.port() }, "127.0.0.1");
    p.interval = interval;
    p.timeout = ms(50);
    let (tx, mut rx) = mpsc::channel(64);
    let task = tokio::spawn(run("ams".into(), p, tx));

    let next = async |rx: &mut mpsc::Receiver<HealthEvent>| {
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("an event within 3 s")
            .expect("runner alive")
    };
    // Up from the first probe, with an RTT sample.
    let e = next(&mut rx).await;
    assert_eq!(
        (e.pop.as_str(), e.status.healthy, e.changed),
        ("ams", true, false)
    );
    assert!(e.result.is_ok() && e.status.srtt.is_some());

    // Take the server away: down on the 3rd failed probe (fall 3).
    drop(listener);
    let gone = Instant::now();
    let mut failures = 0;
    let down_after = loop {
        let e = next(&mut rx).await;
        if e.result.is_err() {
            assert!(matches!(e.result, Err(ProbeError::Refused)), "{e:?}");
            failures += 1;
        }
        if e.changed {
            assert!(!e.status.healthy);
            break gone.elapsed();
        }
        assert!(e.status.healthy, "still up before the fall count");
    };
    assert_eq!(failures, 3);
    // The first failure comes within one interval of the stop, then two more.
    assert!(
        down_after >= interval * 2 && down_after < interval * 3 + ms(150),
        "down after {down_after:?}"
    );

    // Back: up after two good probes (rise 2).
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let mut good = 0;
    loop {
        let e = next(&mut rx).await;
        good += usize::from(e.result.is_ok());
        if e.changed {
            assert!(e.status.healthy);
            break;
        }
        assert!(!e.status.healthy);
    }
    assert_eq!(good, 2);

    // Take it away and back again.
    drop(listener);
    loop {
        let e = next(&mut rx).await;
        if e.changed {
            assert!(!e.status.healthy);
            break;
        }
    }
    let _listener = std::net::TcpListener::bind(addr).unwrap();
    let back = Instant::now();
    let mut successes = 0;
    let up_after = loop {
        let e = next(&mut rx).await;
        successes += usize::from(e.result.is_ok());
        if e.changed {
            assert!(e.status.healthy);
            break back.elapsed();
        }
    };
    assert_eq!(successes, 2);
    assert!(
        up_after >= interval && up_after < interval * 2 + ms(150),
        "up after {up_after:?}"
    );
    assert!(next(&mut rx).await.status.loss > 0.0);

    // Closing the channel stops the runner.
    drop(rx);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("runner stops when the channel closes")
        .unwrap();
}

#[test]
fn rtt_histogram_puts_each_sample_in_its_bucket() {
    let mut h = RttHistogram::default();
    for ms in [0.2, 0.5, 0.7, 3.0, 40.0, 9000.0] {
        h.observe(Duration::from_secs_f64(ms / 1e3));
    }
    // A sample on a bound belongs to that bucket (le = less or equal).
    assert_eq!(h.counts[0], 2, "0.2 and 0.5 ms: le 0.0005");
    assert_eq!(h.counts[1], 1, "0.7 ms: le 0.001");
    assert_eq!(h.counts[3], 1, "3 ms: le 0.005");
    assert_eq!(h.counts[6], 1, "40 ms: le 0.05");
    assert_eq!(h.counts[RTT_BUCKETS.len()], 1, "9 s: above every bound");
    assert_eq!(h.count(), 6);
    assert!((h.sum - 9.0444).abs() < 1e-9, "{}", h.sum);
}
