/* The Go template subset of --format (cli/tmpl.h): every construct, every
 * function, and every error with Go's words and its line:column. The
 * expected outputs are what Go's text/template with Docker's functions
 * prints for the same template and data. */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "err.h"
#include "tmpl.h"
#include "tmpl_tree.h"

/* A service-ls-like context (a struct) with nested data. */
static struct tmpl_value *make_data(void)
{
    struct tmpl_value *d = tmpl_value_map("*service.serviceContext", 0);
    tmpl_map_set_string(d, "ID", "abc123def456");
    tmpl_map_set_string(d, "Name", "web server");
    tmpl_map_set_string(d, "Empty", "");
    tmpl_map_set_bool(d, "Self", true);
    tmpl_map_set_bool(d, "Off", false);
    tmpl_map_set(d, "Replicas", tmpl_value_int(3));
    tmpl_map_set(d, "Zero", tmpl_value_int(0));
    tmpl_map_set(d, "Ratio", tmpl_value_float(0.5));
    struct tmpl_value *spec = tmpl_map_set(d, "Spec", tmpl_value_map(NULL, 0));
    tmpl_map_set_string(spec, "Name", "web");
    struct tmpl_value *labels = tmpl_map_set(spec, "Labels",
                                             tmpl_value_map(NULL, TMPL_MAP_SORTED | TMPL_MAP_STRINGS));
    tmpl_map_set_string(labels, "tier", "front");
    tmpl_map_set_string(labels, "app", "shop");
    struct tmpl_value *args = tmpl_map_set(spec, "Args", tmpl_value_list());
    tmpl_list_append(args, tmpl_value_string("-p"));
    tmpl_list_append(args, tmpl_value_string("80"));
    tmpl_map_set(spec, "None", tmpl_value_list());
    tmpl_map_set(spec, "Nil", tmpl_value_nil());
    return d;
}

static char out[4096], err[SWARM_ERRMSG_SIZE];

/* Parse and run `text`; out gets the output, err the error. Returns 0,
 * 1 for a parse error, 2 for an execution error. */
static int run(const char *text, unsigned flags)
{
    out[0] = err[0] = '\0';
    struct tmpl *t = tmpl_parse(text, err);
    if (t == NULL) {
        return 1;
    }
    struct tmpl_value *d = make_data();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = tmpl_execute(t, f, d, flags, err);
    fclose(f);
    snprintf(out, sizeof out, "%s", buf);
    free(buf);
    tmpl_value_free(d);
    tmpl_free(t);
    return rc == 0 ? 0 : 2;
}

#define EXPECT_OUT(text, want)                                       \
    do {                                                             \
        int rc_ = run(text, 0);                                      \
        if (rc_ != 0) {                                              \
            FAILF("%s: unexpected error: %s", text, err);            \
        }                                                            \
        if (strcmp(out, want) != 0) {                                \
            FAILF("%s: got \"%s\", want \"%s\"", text, out, want);   \
        }                                                            \
    } while (0)

#define EXPECT_ERR(text, want_rc, want)                                        \
    do {                                                                       \
        int rc_ = run(text, 0);                                                \
        if (rc_ != want_rc || strcmp(err, want) != 0) {                        \
            FAILF("%s: rc %d err \"%s\", want rc %d \"%s\"", text, rc_, err, \
                  want_rc, want);                                              \
        }                                                                      \
    } while (0)

TEST(text_and_fields)
{
    EXPECT_OUT("plain text", "plain text");
    EXPECT_OUT("{{.ID}}", "abc123def456");
    EXPECT_OUT("{{ .Name }}: {{.Replicas}}", "web server: 3");
    EXPECT_OUT("{{.Spec.Name}}", "web");
    EXPECT_OUT("{{.Spec.Labels.tier}}", "front");
    EXPECT_OUT("{{.Spec.Labels.nope}}", "<no value>");
    EXPECT_OUT("{{.Ratio}} {{.Self}} {{.Off}}", "0.5 true false");
    EXPECT_OUT("{{.Spec.Args}}", "[-p 80]");
    EXPECT_OUT("{{.Spec.Labels}}", "map[app:shop tier:front]");
    EXPECT_OUT("{{.Spec.Nil}}", "<nil>");
    EXPECT_OUT("a\nb {{.ID}}\n", "a\nb abc123def456\n");
    EXPECT_OUT("{{/* a comment */}}x{{- /* trimmed */ -}} y", "xy");
}

TEST(literals)
{
    EXPECT_OUT("{{\"quoted \\\"s\\\"\\t\\u00e9\"}}", "quoted \"s\"\t\xc3\xa9");
    EXPECT_OUT("{{`raw \\n`}}", "raw \\n");
    EXPECT_OUT("{{42}} {{-7}} {{0x10}} {{1.5}} {{1e3}} {{true}}", "42 -7 16 1.5 1000 true");
}

TEST(trim_markers)
{
    EXPECT_OUT("a  {{- .ID -}}  b", "aabc123def456b");
    EXPECT_OUT("a\n\t{{- .ID}}\n", "aabc123def456\n");
    EXPECT_OUT("{{.ID -}}\n\n  x", "abc123def456x");
    /* "-3" without a space is a number, not a trim marker */
    EXPECT_OUT("{{-3}}", "-3");
}

TEST(dot_and_json)
{
    EXPECT_OUT("{{json .Spec.Labels}}", "{\"app\":\"shop\",\"tier\":\"front\"}");
    EXPECT_OUT("{{json .Spec.Args}}", "[\"-p\",\"80\"]");
    EXPECT_OUT("{{json .Name}}", "\"web server\"");
    EXPECT_OUT("{{json .Ratio}} {{json .Zero}} {{json .Self}} {{json .Spec.Nil}}",
               "0.5 0 true null");
    EXPECT_OUT("{{json .Spec}}", "{\"Name\":\"web\",\"Labels\":{\"app\":\"shop\",\"tier\":"
                                 "\"front\"},\"Args\":[\"-p\",\"80\"],\"None\":[],\"Nil\":null}");
    EXPECT_OUT("{{range .Spec.Args}}[{{.}}]{{end}}", "[-p][80]");
    EXPECT_OUT("{{.Name | json}}", "\"web server\"");
    EXPECT_OUT("{{json \"a<b>&\\\"\"}}", "\"a<b>&\\\"\""); /* HTML not escaped */
}

TEST(pipelines_and_parens)
{
    EXPECT_OUT("{{.Name | upper}}", "WEB SERVER");
    EXPECT_OUT("{{.Name | upper | lower}}", "web server");
    EXPECT_OUT("{{.Spec.Args | len}}", "2");
    EXPECT_OUT("{{(.Spec).Name}} {{(index .Spec.Args 1) | len}}", "web 2");
    EXPECT_OUT("{{upper (truncate .Name 3)}}", "WEB");
}

TEST(if_else)
{
    EXPECT_OUT("{{if .Self}}yes{{end}}", "yes");
    EXPECT_OUT("{{if .Off}}yes{{else}}no{{end}}", "no");
    EXPECT_OUT("{{if .Empty}}a{{else if .Zero}}b{{else if .Replicas}}c{{else}}d{{end}}", "c");
    EXPECT_OUT("{{if .Empty}}a{{else if .Zero}}b{{else}}d{{end}}", "d");
    /* Go's truthiness: empty string, 0, empty list, nil are false */
    EXPECT_OUT("{{if .Spec.None}}a{{end}}{{if .Spec.Nil}}b{{end}}{{if .Spec.Args}}c{{end}}", "c");
    EXPECT_OUT("{{if .Spec.Labels.nope}}a{{else}}missing{{end}}", "missing");
    EXPECT_OUT("{{if not .Off}}n{{end}}{{if and .Self .Replicas}}a{{end}}{{if or .Off .Zero}}o{{end}}",
               "na");
    EXPECT_OUT("{{if eq .Spec.Name \"web\"}}eq{{end}}{{if ne .Replicas 3}}ne{{end}}", "eq");
    EXPECT_OUT("{{if lt .Replicas 4}}lt{{end}}{{if ge .Ratio 0.5}}ge{{end}}"
               "{{if gt \"b\" \"a\"}}gt{{end}}{{if le 3 2}}le{{end}}",
               "ltgegt");
    EXPECT_OUT("{{if eq .Replicas 1 2 3}}any{{end}}", "any");
    EXPECT_OUT("{{with .Spec}}{{.Name}}{{end}}{{with .Empty}}x{{else}}none{{end}}", "webnone");
}

TEST(range_and_variables)
{
    EXPECT_OUT("{{range $i, $a := .Spec.Args}}{{$i}}={{$a}} {{end}}", "0=-p 1=80 ");
    EXPECT_OUT("{{range $k, $v := .Spec.Labels}}{{$k}}:{{$v}};{{end}}", "app:shop;tier:front;");
    EXPECT_OUT("{{range $v := .Spec.Labels}}{{$v}} {{end}}", "shop front ");
    EXPECT_OUT("{{range .Spec.None}}x{{else}}empty{{end}}", "empty");
    EXPECT_OUT("{{range .Spec.Nil}}x{{else}}nil{{end}}", "nil");
    EXPECT_OUT("{{range .Spec.Args}}{{$.ID}} {{end}}", "abc123def456 abc123def456 ");
    EXPECT_OUT("{{$n := .Spec.Name}}{{$n}}-{{$n | upper}}", "web-WEB");
    EXPECT_OUT("{{$n := 1}}{{range .Spec.Args}}{{$n = 2}}{{end}}{{$n}}", "2");
    EXPECT_OUT("{{range .Spec.Args}}{{if eq . \"80\"}}{{break}}{{end}}{{.}}{{end}}", "-p");
    EXPECT_OUT("{{range .Spec.Args}}{{if eq . \"-p\"}}{{continue}}{{end}}{{.}}{{end}}", "80");
}

TEST(functions)
{
    EXPECT_OUT("{{upper .Name}} {{lower \"MiXeD\"}} {{title .Name}}", "WEB SERVER mixed Web Server");
    EXPECT_OUT("{{join .Spec.Args \",\"}}", "-p,80");
    EXPECT_OUT("{{join (split \"a:b:c\" \":\") \"-\"}}", "a-b-c");
    EXPECT_OUT("{{split \"a:b\" \":\"}} {{len (split \"\" \",\")}}", "[a b] 1");
    EXPECT_OUT("{{index (split \"nginx:1.25\" \":\") 1}}", "1.25");
    EXPECT_OUT("{{index .Spec.Args 0}} {{index .Spec.Labels \"app\"}}", "-p shop");
    EXPECT_OUT("[{{index .Spec.Labels \"nope\"}}]", "[]");
    EXPECT_OUT("{{truncate .ID 6}} {{truncate .ID 100}} {{truncate \"abc\" 3}}",
               "abc123 abc123def456 abc");
    EXPECT_OUT("[{{pad .Spec.Name 2 3}}] [{{pad .Empty 2 3}}]", "[  web   ] []");
    EXPECT_OUT("{{println .Spec.Name .Replicas}}", "web 3\n");
    EXPECT_OUT("{{println}}", "\n");
    EXPECT_OUT("{{print \"a\" 1 2 \"b\"}}", "a1 2b");
    EXPECT_OUT("{{len .Spec.Args}} {{len .Name}} {{len .Spec.Labels}}", "2 10 2");
    EXPECT_OUT("[{{pad .Spec.Name 1 1 | upper}}]", "[ WEB ]");
}

TEST(printf)
{
    EXPECT_OUT("{{printf \"%s-%d\" .Spec.Name .Replicas}}", "web-3");
    EXPECT_OUT("{{printf \"%.12s|%-6s|%6s|\" .Name .Spec.Name .Spec.Name}}",
               "web server|web   |   web|");
    EXPECT_OUT("{{printf \"%.3s\" \"h\xc3\xa9llo\"}}", "h\xc3\xa9l"); /* characters, not bytes */
    EXPECT_OUT("{{printf \"%05d|%+d|%x|%X|%#x|%o|%x\" 42 42 255 255 255 8 -255}}",
               "00042|+42|ff|FF|0xff|10|-ff");
    EXPECT_OUT("{{printf \"%.2f|%e|%g|%v|%6.1f\" .Ratio 1234.5 0.000012 .Ratio 3.14159}}",
               "0.50|1.234500e+03|1.2e-05|0.5|   3.1");
    EXPECT_OUT("{{printf \"%q|%v|%t|%v|%s\" .Name .Spec.Args .Self .Spec.Labels .Spec.Args}}",
               "\"web server\"|[-p 80]|true|map[app:shop tier:front]|[-p 80]");
    EXPECT_OUT("{{printf \"%c%c|%q|%x\" 104 105 97 \"hi\"}}", "hi|'a'|6869");
    EXPECT_OUT("{{printf \"100%%\"}}", "100%");
    /* Go's in-band errors */
    EXPECT_OUT("{{printf \"%d\" .Name}}", "%!d(string=web server)");
    EXPECT_OUT("{{printf \"%s %s\" .Name}}", "web server %!s(MISSING)");
    EXPECT_OUT("{{printf \"%s\" .Name 1}}", "web server%!(EXTRA int=1)");
    EXPECT_OUT("{{printf \"%z\" 1}}", "%!z(int=1)");
    EXPECT_OUT("{{printf \"x%\"}}", "x%!(NOVERB)");
    EXPECT_OUT("{{.Replicas | printf \"%03d\"}}", "003");
    EXPECT_ERR("{{printf 1}}", 2,
               "template: :1:9: executing \"\" at <1>: wrong type for value; expected string; "
               "got int");
}

/* Go's time.Duration.String() for the durations inspect shows, and how a
 * duration value prints, formats and marshals. */
TEST(durations)
{
    static const struct {
        int64_t ns;
        const char *want;
    } cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {999, "999ns"},
        {1500, "1.5\xc2\xb5s"},
        {250000000, "250ms"},
        {1000000, "1ms"},
        {1000000000, "1s"},
        {1500000000, "1.5s"},
        {90000000000, "1m30s"},
        {3600000000000, "1h0m0s"},
        {3723500000000, "1h2m3.5s"},
        {-5000000000, "-5s"},
        {INT64_MIN, "-2562047h47m16.854775808s"},
        {INT64_MAX, "2562047h47m16.854775807s"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tmpl_format_duration(cases[i].ns, buf, sizeof buf);
        ASSERT_STR_EQ(buf, cases[i].want);
    }
    struct tmpl_value *d = tmpl_value_map(NULL, 0);
    struct tmpl_value *v = tmpl_map_set(d, "Monitor", tmpl_value_int(5000000000));
    v->is_duration = true;
    struct tmpl *t = tmpl_parse("{{.Monitor}} {{printf \"%d|%v|%q\" .Monitor .Monitor "
                                ".Monitor}} {{json .}}",
                                err);
    ASSERT(t != NULL);
    char *got = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&got, &len);
    ASSERT_INT_EQ(tmpl_execute(t, f, d, 0, err), 0);
    fclose(f);
    ASSERT_STR_EQ(got, "5s 5000000000|5s|\"5s\" {\"Monitor\":5000000000}");
    free(got);
    tmpl_free(t);
    tmpl_value_free(d);
}

TEST(header_functions)
{
    /* The table header keeps column names through Docker's functions. */
    out[0] = err[0] = '\0';
    struct tmpl *t = tmpl_parse("{{upper .Name}}|{{truncate .ID 2}}|{{json .Name}}|"
                                "{{pad .Name 1 1}}|{{.Nope}}",
                                err);
    ASSERT(t != NULL);
    struct tmpl_value *h = tmpl_value_map(NULL, TMPL_MAP_STRINGS | TMPL_MAP_SORTED);
    tmpl_map_set_string(h, "Name", "NAME");
    tmpl_map_set_string(h, "ID", "ID");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT_INT_EQ(tmpl_execute(t, f, h, TMPL_EXEC_HEADER, err), 0);
    fclose(f);
    ASSERT_STR_EQ(buf, "NAME|ID|NAME| NAME |<no value>");
    free(buf);
    tmpl_value_free(h);
    tmpl_free(t);
}

TEST(parse_errors)
{
    EXPECT_ERR("{{.Name }", 1, "template: :1:8: unexpected \"}\" in operand");
    EXPECT_ERR("{{.Name}", 1, "template: :1:7: bad character U+007D '}'");
    EXPECT_ERR("{{.Name", 1, "template: :1:7: unclosed action");
    EXPECT_ERR("a\nb {{.Name }", 1, "template: :2:10: unexpected \"}\" in operand");
    EXPECT_ERR("{{}}", 1, "template: :1:2: missing value for command");
    EXPECT_ERR("{{if .Self}}x", 1, "template: :1:13: unexpected EOF");
    EXPECT_ERR("x{{end}}", 1, "template: :1:1: unexpected {{end}}");
    EXPECT_ERR("{{else}}", 1, "template: :1:0: unexpected {{else}}");
    EXPECT_ERR("{{nope .Name}}", 1, "template: :1:2: function \"nope\" not defined");
    EXPECT_ERR("{{$x}}", 1, "template: :1:2: undefined variable \"$x\"");
    EXPECT_ERR("{{\"abc}}", 1, "template: :1:2: unterminated quoted string");
    EXPECT_ERR("{{`abc}}", 1, "template: :1:2: unterminated raw quoted string");
    EXPECT_ERR("{{(.Name}}", 1, "template: :1:8: unclosed left paren");
    EXPECT_ERR("{{.Name)}}", 1, "template: :1:7: unexpected right paren");
    EXPECT_ERR("{{1x}}", 1, "template: :1:2: bad number syntax: \"1x\"");
    EXPECT_ERR("{{.Name | \"x\"}}", 1, "template: :1:10: non executable command in pipeline stage 2");
    EXPECT_ERR("{{/* open", 1, "template: :1:0: unclosed comment");
    EXPECT_ERR("{{break}}", 1, "template: :1:2: {{break}} outside {{range}}");
    EXPECT_ERR("{{define \"x\"}}{{end}}", 1, "template: :1:2: {{define}} is not supported");
    EXPECT_ERR("{{if}}{{end}}", 1, "template: :1:4: missing value for if");
    EXPECT_ERR("{{range .A}}{{else}}{{else}}{{end}}", 1,
               "template: :1:20: expected end; found {{else}}");
    EXPECT_ERR("{{.Name \xc3\xa9}}", 1, "template: :1:8: function \"\xc3\xa9\" not defined");
    EXPECT_ERR("{{true.X}}", 1, "template: :1:6: unexpected . after term \"true\"");
    EXPECT_ERR("{{$a, $b := .Spec.Args}}", 1, "template: :1:4: too many declarations in command");
    EXPECT_ERR("{{range $a, 1}}{{end}}", 1, "template: :1:10: range can only initialize variables");
    EXPECT_ERR("{{.Name \x01}}", 1, "template: :1:8: unrecognized character in action: U+0001");
    EXPECT_ERR("{{$x : 1}}", 1, "template: :1:5: expected :=");
    EXPECT_ERR("{{'a'}}", 1, "template: :1:2: character constants are not supported");
    EXPECT_ERR("{{/* c */ .Name}}", 1, "template: :1:0: comment ends before closing delimiter");
    EXPECT_ERR("{{range .A}}{{else if .B}}{{end}}", 1, "template: :1:19: unexpected <if> in else");
    EXPECT_ERR("{{end 1}}", 1, "template: :1:6: unexpected \"1\" in end");
    EXPECT_ERR("{{.Name | .}}", 1, "template: :1:10: non executable command in pipeline stage 2");
    /* a variable is executable: it fails when run, as Go's */
    EXPECT_ERR("{{.Name | $}}", 2,
               "template: :1:10: executing \"\" at <$>: can't give argument to non-function $");
}

TEST(exec_errors)
{
    EXPECT_ERR("{{.ID}} {{.Nope}}", 2,
               "template: :1:10: executing \"\" at <.Nope>: can't evaluate field Nope in "
               "type *service.serviceContext");
    EXPECT_ERR("{{.Name.First}}", 2,
               "template: :1:2: executing \"\" at <.Name.First>: can't evaluate field First "
               "in type string");
    EXPECT_ERR("x\n  {{.Spec.Nil.X}}", 2,
               "template: :2:4: executing \"\" at <.Spec.Nil.X>: nil pointer evaluating "
               "interface {}.X");
    EXPECT_ERR("{{upper .Replicas}}", 2,
               "template: :1:8: executing \"\" at <.Replicas>: wrong type for value; "
               "expected string; got int");
    EXPECT_ERR("{{truncate .Name \"3\"}}", 2,
               "template: :1:17: executing \"\" at <\"3\">: wrong type for value; expected "
               "int; got string");
    EXPECT_ERR("{{index .Spec.Args 5}}", 2,
               "template: :1:2: executing \"\" at <index>: error calling index: index out "
               "of range: 5");
    EXPECT_ERR("{{index .Name \"a\"}}", 2,
               "template: :1:2: executing \"\" at <index>: error calling index: cannot index "
               "slice/array with type string");
    EXPECT_ERR("{{index .Replicas 1}}", 2,
               "template: :1:2: executing \"\" at <index>: error calling index: can't index "
               "item of type int");
    EXPECT_ERR("{{join .Name \",\"}}", 2,
               "template: :1:7: executing \"\" at <.Name>: wrong type for value; expected "
               "[]string; got string");
    EXPECT_ERR("{{.Spec.Name | pad 1 1}}", 2,
               "template: :1:19: executing \"\" at <1>: wrong type for value; expected "
               "string; got int");
    EXPECT_ERR("{{upper}}", 2,
               "template: :1:2: executing \"\" at <upper>: wrong number of args for upper: "
               "want 1 got 0");
    EXPECT_ERR("{{range 3}}{{end}}", 2,
               "template: :1:8: executing \"\" at <3>: range can't iterate over 3");
    EXPECT_ERR("{{pad .Name -1 0}}", 2,
               "template: :1:2: executing \"\" at <pad>: error calling pad: strings: negative "
               "Repeat count");
    EXPECT_ERR("{{pad .Name 5000 0}}", 2,
               "template: :1:2: executing \"\" at <pad>: error calling pad: padding over 4096 "
               "spaces");
    EXPECT_ERR("{{range .Name}}{{end}}", 2,
               "template: :1:8: executing \"\" at <.Name>: range can't iterate over web server");
    EXPECT_ERR("{{.Name 1}}", 2,
               "template: :1:2: executing \"\" at <.Name>: Name has arguments but cannot be "
               "invoked as function");
    EXPECT_ERR("{{1 2}}", 2,
               "template: :1:2: executing \"\" at <1>: can't give argument to non-function 1");
    EXPECT_ERR("{{eq .Name 1}}", 2,
               "template: :1:2: executing \"\" at <eq>: error calling eq: incompatible types "
               "for comparison");
    EXPECT_ERR("{{len .Replicas}}", 2,
               "template: :1:2: executing \"\" at <len>: error calling len: len of type int");
    /* long node text is cut at 20 characters as Go's ErrorContext */
    EXPECT_ERR("{{.Spec.Labels.tier.Deeper.Still}}", 2,
               "template: :1:2: executing \"\" at <.Spec.Labels.tier.De...>: can't evaluate "
               "field Deeper in type string");
}

TEST(missingkey_error)
{
    ASSERT_INT_EQ(run("{{.Spec.Nope}}", TMPL_EXEC_MISSINGKEY_ERROR), 2);
    ASSERT_STR_EQ(err, "template: :1:2: executing \"\" at <.Spec.Nope>: map has no entry for "
                       "key \"Nope\"");
    ASSERT_INT_EQ(run("{{.Spec.Name}}", TMPL_EXEC_MISSINGKEY_ERROR), 0);
    ASSERT_STR_EQ(out, "web");
}

TEST(output_before_error_is_kept)
{
    ASSERT_INT_EQ(run("ok {{.ID}} {{.Nope}} never", 0), 2);
    ASSERT_STR_EQ(out, "ok abc123def456 ");
}

TEST(json_of_values)
{
    struct tmpl_value *m = tmpl_value_map("ctx", 0);
    tmpl_map_set_string(m, "B", "x\"\n\x01");
    tmpl_map_set(m, "A", tmpl_value_float(1e21));
    tmpl_map_set(m, "C", tmpl_value_float(1e-7));
    tmpl_map_set(m, "D", tmpl_value_int(-5));
    struct tmpl_value *skip = tmpl_map_set(m, "E", tmpl_value_string(""));
    skip->omitempty = true;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tmpl_value_print_json(f, m);
    fclose(f);
    ASSERT_STR_EQ(buf, "{\"B\":\"x\\\"\\n\\u0001\",\"A\":1e+21,\"C\":1e-7,\"D\":-5}");
    free(buf);
    tmpl_value_free(m);
}

TEST_MAIN()
