"""A node stopped while a request it started is in flight: the renewal of
its certificate waits on a manager that does not answer (SIGSTOP) when the
node gets SIGTERM. The node cancels the request and is freed only after its
callback ran; the callback touches nothing freed (a use-after-free under
ASan before, which the harness reports from the log)."""
import signal

from conftest import wait_for
from test_certs import cert_times, preload_clock_shim
from test_workers import join_worker


def test_worker_stopped_while_its_renewal_is_in_flight(swarm, tmp_path, monkeypatch):
    offset = preload_clock_shim(monkeypatch, tmp_path)
    m = swarm.node("m1").start()
    m.ok("swarm", "init", "--advertise-addr", m.ip, "--cert-expiry", "1h")
    w = join_worker(swarm, m, "w1")
    wait_for(lambda: cert_times(w), timeout=10, what="w1's certificate times")
    m.proc.send_signal(signal.SIGSTOP)
    try:
        offset.write_text(str(50 * 60))  # past 80 %: w1 renews, m1 does not answer
        wait_for(lambda: "renewing the node certificate (scheduled renewal)"
                 in w.log_path.read_text(), timeout=30, what="w1's renewal under way")
        w.proc.send_signal(signal.SIGTERM)
        # The renewal is cancelled: w1 stops while m1 still says nothing.
        wait_for(lambda: w.proc.poll() is not None, timeout=10,
                 what="w1 stopped while its renewal was in flight")
    finally:
        m.proc.send_signal(signal.SIGCONT)
    assert w.proc.wait(timeout=30) == 0
    log = w.log_path.read_text()
    assert "AddressSanitizer" not in log, log[-3000:]
    assert log.rstrip().endswith("stopped"), log[-2000:]
    # The manager is fine, and the worker comes back and renews.
    w.start()
    wait_for(lambda: "node certificate renewed" in w.log_path.read_text(), timeout=60,
             what="w1 renewed after its restart")
