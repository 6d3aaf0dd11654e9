/* Docker's formatter.Context.Write and inspect.Inspect over the template
 * engine (see view_format.h). Scripts written against `docker ... --format`
 * keep working: same prefixes, same header rule, same tab layout. */
#include "view_format.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "format.h"
#include "json.h"

bool cli_format_is_default(const char *format)
{
    return format == NULL || *format == '\0' || strcmp(format, "table") == 0;
}

/* formatter.Context.preFormat: strip "table", trim spaces, \t and \n. */
static char *cli_format_prepare(const char *format, bool *table)
{
    if (strcmp(format, "json") == 0) {
        format = "{{json .}}";
    }
    *table = strncmp(format, "table", 5) == 0;
    const char *s = format + (*table ? 5 : 0);
    while (*s == ' ') {
        s++;
    }
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == ' ') {
        len--;
    }
    char *out = cli_xcalloc(len + 1, 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len && (s[i + 1] == 't' || s[i + 1] == 'n')) {
            out[o++] = s[i + 1] == 't' ? '\t' : '\n';
            i++;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Lines of `text` into a table, cells split at tabs (tabwriter's cells). */
static void cli_format_table_lines(struct cli_table *t, char *text)
{
    size_t len = strlen(text);
    if (len > 0 && text[len - 1] == '\n') {
        text[len - 1] = '\0';
    }
    for (char *line = text; line != NULL;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        for (char *cell = line; cell != NULL;) {
            char *tab = strchr(cell, '\t');
            if (tab != NULL) {
                *tab = '\0';
            }
            cli_table_add(t, cell);
            cell = tab != NULL ? tab + 1 : NULL;
        }
        cli_table_end_row(t);
        line = nl != NULL ? nl + 1 : NULL;
    }
}

int cli_format_list(FILE *out, const char *format, struct tmpl_value *const *rows, size_t n,
                    const struct cli_fmt_column *columns, size_t n_columns, char *errmsg)
{
    bool table;
    char *text = cli_format_prepare(format, &table);
    struct tmpl *t = tmpl_parse(text, errmsg);
    free(text);
    if (t == NULL) {
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "template parsing error");
        return SWARM_EINVAL;
    }
    char *body = NULL;
    size_t body_len = 0;
    FILE *mem = open_memstream(&body, &body_len);
    if (mem == NULL) {
        cli_oom();
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = tmpl_execute(t, mem, rows[i], 0, errmsg);
        fputc('\n', mem);
    }
    fclose(mem);
    if (rc != 0) {
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "template parsing error");
    } else if (!table) {
        fputs(body, out);
    } else {
        /* The header: the same template on the column names, with Docker's
         * HeaderFunctions; its errors are ignored, as Docker's are. */
        struct tmpl_value *header = tmpl_value_map(NULL, TMPL_MAP_SORTED | TMPL_MAP_STRINGS);
        for (size_t c = 0; c < n_columns; c++) {
            tmpl_map_set_string(header, columns[c].field, columns[c].header);
        }
        char *head = NULL;
        size_t head_len = 0;
        mem = open_memstream(&head, &head_len);
        if (mem == NULL) {
            cli_oom();
        }
        char ignored[SWARM_ERRMSG_SIZE];
        tmpl_execute(t, mem, header, TMPL_EXEC_HEADER, ignored);
        fputc('\n', mem);
        fputs(body, mem);
        fclose(mem);
        struct cli_table *tw = cli_table_new(10, 3);
        cli_format_table_lines(tw, head);
        cli_table_print(tw, out);
        cli_table_free(tw);
        free(head);
        tmpl_value_free(header);
    }
    free(body);
    tmpl_free(t);
    return rc;
}

int cli_format_inspect_values(FILE *out, FILE *errout, const char *format,
                              struct tmpl_value *const *objs, size_t n)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    struct tmpl *t = tmpl_parse(format, errmsg);
    if (t == NULL) {
        fflush(out);
        fprintf(errout, "template parsing error: %s\n", errmsg);
        return SWARM_EINVAL;
    }
    /* The errors follow everything printed, as Docker's inspect returns
     * them joined after its loop. */
    char *errs = NULL;
    size_t errs_len = 0;
    FILE *emem = open_memstream(&errs, &errs_len);
    if (emem == NULL) {
        cli_oom();
    }
    for (size_t i = 0; i < n; i++) {
        const struct tmpl_value *obj = objs[i];
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (mem == NULL) {
            cli_oom();
        }
        int rc = tmpl_execute(t, mem, obj, TMPL_EXEC_MISSINGKEY_ERROR, errmsg);
        fclose(mem);
        if (rc == 0) {
            fprintf(out, "%s\n", buf);
        } else {
            fprintf(emem, "template parsing error: %s\n", errmsg);
        }
        free(buf);
    }
    tmpl_free(t);
    fclose(emem);
    int rv = errs_len > 0 ? SWARM_EINVAL : 0;
    if (errs_len > 0) {
        fflush(out);
        fputs(errs, errout);
    }
    free(errs);
    return rv;
}

int cli_format_inspect(FILE *out, FILE *errout, const char *format,
                       const ProtobufCMessage *const *msgs, size_t n)
{
    struct tmpl_value **objs = cli_xcalloc(n + 1, sizeof *objs);
    for (size_t i = 0; i < n; i++) {
        objs[i] = cli_json_message_value(msgs[i]);
    }
    int rv = cli_format_inspect_values(out, errout, format, objs, n);
    for (size_t i = 0; i < n; i++) {
        tmpl_value_free(objs[i]);
    }
    free(objs);
    return rv;
}
