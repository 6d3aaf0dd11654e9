"""--format on every ls, ps and inspect command: simple, `table` and json
templates against a real 1-node swarm running one service, with the exact
output Docker's formatters print; broken templates fail with their position,
exit status 1 and nothing on stdout."""
import json

import pytest

from conftest import wait_for


@pytest.fixture
def svc(manager):
    """The manager, running service web (1 replica, a label), and facts."""
    m = manager
    m.ok("service", "create", "-d", "--name", "web", "--label", "tier=front",
         "sleep", "1000")

    def running():
        out = m.ok("service", "ps", "--format", "{{.CurrentState}}", "web")
        return out.startswith("Running ")
    wait_for(running, timeout=30, what="web running")
    wait_for(lambda: m.ok("service", "ls", "--format", "{{.Replicas}}") == "1/1\n",
             timeout=20, what="web 1/1")
    node = m.inspect()
    service = json.loads(m.ok("service", "inspect", "web"))[0]
    return m, node["ID"], node["Description"]["Hostname"], service


def fails_with(m, *args):
    """Runs a command that must fail: exit status 1, nothing on stdout."""
    r = m.ctl(*args)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "", r.stdout
    return r.stderr


def test_service_ls_format(svc):
    m, _, _, service = svc
    sid = service["ID"]
    assert m.ok("service", "ls", "--format", "{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}") \
        == "web replicated 1/1 sleep\n"
    assert m.ok("service", "ls", "--format", "{{.ID}}") == sid[:12] + "\n"
    # table: header from the column names, tab-separated cells laid out as
    # Docker's tabwriter (minwidth 10, padding 3); literal \t works too.
    want = "NAME      REPLICAS   IMAGE\nweb       1/1        sleep\n"
    assert m.ok("service", "ls", "--format", "table {{.Name}}\t{{.Replicas}}\t{{.Image}}") == want
    assert m.ok("service", "ls", "--format", r"table {{.Name}}\t{{.Replicas}}\t{{.Image}}") \
        == want
    assert m.ok("service", "ls", "--format", "table {{.Name | upper}}") == "NAME\nWEB\n"
    assert m.ok("service", "ls", "--format", '{{printf "%-5s|%.4s" .Name .ID}}') \
        == f"web  |{sid[:4]}\n"
    # "table" alone is the default table
    assert m.ok("service", "ls", "--format", "table") == m.ok("service", "ls")
    # json: compact, keys sorted as Docker's formatter marshals them
    out = m.ok("service", "ls", "--format", "{{json .}}")
    assert out == ('{"ID":"%s","Image":"sleep","Mode":"replicated","Name":"web",'
                   '"Ports":"","Replicas":"1/1"}\n' % sid[:12])
    assert json.loads(out) == {"ID": sid[:12], "Image": "sleep", "Mode": "replicated",
                               "Name": "web", "Ports": "", "Replicas": "1/1"}
    assert m.ok("service", "ls", "--format", "json") == out
    # a custom format wins over -q, as in Docker
    assert m.ok("service", "ls", "-q", "--format", "{{.Name}}") == "web\n"
    # no rows: table prints the header alone, a plain template nothing
    assert m.ok("service", "ls", "-f", "name=nope", "--format", "table {{.Name}}") == "NAME\n"
    assert m.ok("service", "ls", "-f", "name=nope", "--format", "{{.Name}}") == ""


def test_node_ls_format(svc):
    m, nid, host, _ = svc
    assert m.ok("node", "ls", "--format",
                "{{.Hostname}} {{.Self}} {{.Status}} {{.Availability}} {{.ManagerStatus}}") \
        == f"{host} true Ready Active Leader\n"
    # Docker's own default node format: the Self header is empty
    out = m.ok("node", "ls", "--format",
               "table {{.ID}} {{if .Self}}*{{else}} {{end}}\t{{.Hostname}}\t{{.Status}}")
    width = max(10, len(nid) + 2 + 3)
    hwidth = max(10, len("HOSTNAME") + 3, len(host) + 3)
    assert out == (f"{'ID  ':<{width}}{'HOSTNAME':<{hwidth}}STATUS\n"
                   f"{nid + ' *':<{width}}{host:<{hwidth}}Ready\n")
    js = m.ok("node", "ls", "--format", "{{json .}}")
    engine = m.inspect()["Description"]["EngineVersion"]
    assert json.loads(js) == {"Availability": "Active", "EngineVersion": engine,
                              "Hostname": host, "ID": nid, "ManagerStatus": "Leader",
                              "Self": True, "Status": "Ready"}
    assert js.startswith('{"Availability":"Active","EngineVersion":')


def test_service_and_node_ps_format(svc):
    m, nid, host, service = svc
    assert m.ok("service", "ps", "--format", "{{.Name}} {{.DesiredState}} {{.Node}} {{.Image}}",
                "web") == f"web.1 Running {host} sleep\n"
    assert m.ok("node", "ps", "--format", "{{.Name}}|{{.Error}}|{{.Ports}}", "self") \
        == "web.1||\n"
    assert m.ok("service", "ps", "--format", "table {{.Name}}\t{{.DesiredState}}\t{{.Node}}",
                "web") == f"NAME      DESIRED STATE   NODE\nweb.1     Running         {host}\n"
    assert m.ok("node", "ps", "--format", "table {{.Name}}", nid) == "NAME\nweb.1\n"
    rows = [json.loads(line) for line in
            m.ok("service", "ps", "--format", "{{json .}}", "web").splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert sorted(row) == ["CurrentState", "DesiredState", "Error", "ID", "Image", "Name",
                           "Node", "Ports"]
    assert (row["Name"], row["DesiredState"], row["Node"], row["Image"], row["Error"]) \
        == ("web.1", "Running", host, "sleep", "")
    assert row["CurrentState"].startswith("Running ") and row["CurrentState"].endswith(" ago")
    assert len(row["ID"]) == 12
    full = json.loads(m.ok("service", "ps", "--no-trunc", "--format", "json", "web"))
    assert full["ID"].startswith(row["ID"]) and len(full["ID"]) == 25


def test_inspect_format(svc):
    m, nid, host, service = svc
    assert m.ok("service", "inspect", "-f", "{{.Spec.Name}} {{.Spec.Mode.Replicated.Replicas}}",
                "web") == "web 1\n"
    assert m.ok("service", "inspect", "--format",
                '{{index .Spec.Labels "tier"}} {{json .Spec.Labels}}', "web") \
        == 'front {"tier":"front"}\n'
    out = m.ok("service", "inspect", "-f", "{{json .}}", "web")
    assert out.count("\n") == 1 and json.loads(out) == service
    assert m.ok("service", "inspect", "-f", "{{.ID}}", "web", "web") == \
        f"{service['ID']}\n{service['ID']}\n"
    assert m.ok("node", "inspect", "-f", "{{.Description.Hostname}} {{.Status.State}} "
                "{{.Spec.Role}} {{if .ManagerStatus.Leader}}leader{{end}}", "self") \
        == f"{host} ready manager leader\n"
    node = json.loads(m.ok("node", "inspect", "--format", "{{json .}}", nid))
    assert node == m.inspect(nid)
    # "json" is the default output; "pretty" is --pretty
    assert m.ok("node", "inspect", "--format", "json", "self") == m.ok("node", "inspect", "self")
    assert m.ok("service", "inspect", "--format", "pretty", "web") == \
        m.ok("service", "inspect", "--pretty", "web")


def test_broken_templates_fail_with_position(svc):
    m, _, _, _ = svc
    err = fails_with(m, "service", "ls", "--format", "{{.Name }")
    assert err == 'template parsing error: template: :1:8: unexpected "}" in operand\n'
    err = fails_with(m, "service", "ls", "--format", "{{.ID}} {{.Nope}}")
    assert err == ('template parsing error: template: :1:10: executing "" at <.Nope>: '
                   "can't evaluate field Nope in type *service.serviceContext\n")
    err = fails_with(m, "node", "ls", "--format", "table {{.ID}}\n{{if .Self}}")
    assert err == "template parsing error: template: :2:12: unexpected EOF\n"
    err = fails_with(m, "service", "ps", "--format", "{{upper .Nope}}", "web")
    assert err == ('template parsing error: template: :1:8: executing "" at <.Nope>: '
                   "can't evaluate field Nope in type *task.taskContext\n")
    err = fails_with(m, "node", "ps", "--format", "{{nope .Name}}")
    assert err == 'template parsing error: template: :1:2: function "nope" not defined\n'
    err = fails_with(m, "service", "inspect", "-f", "{{.Spec.Nope}}", "web")
    assert err == ('template parsing error: template: :1:2: executing "" at <.Spec.Nope>: '
                   'map has no entry for key "Nope"\n')
    err = fails_with(m, "node", "inspect", "-f", "{{.Spec.Name", "self")
    assert err == "template parsing error: template: :1:12: unclosed action\n"
    # the template is checked before anything is looked up, as Docker does
    err = fails_with(m, "service", "inspect", "-f", "{{if}}", "web", "nope")
    assert err == "template parsing error: template: :1:4: missing value for if\n"
    err = fails_with(m, "service", "inspect", "--pretty", "-f", "{{.ID}}", "web")
    assert err == "Error: --format is incompatible with human friendly format\n"
    # nothing changed: the service is still there, as it was
    assert m.ok("service", "ls", "--format", "{{.Name}} {{.Replicas}}") == "web 1/1\n"
