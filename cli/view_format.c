/* Docker's formatter.Context.Write and inspect.Inspect over the template
 * engine (see view_format.h). Scripts written against `docker ... --format`
 * keep working: same prefixes, same header rule, same tab layout. */
#include "view_format.h"

#include <stdlib.h>
#include <string.h>

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

static void cli_format_wrap(char *errmsg, size_t size, const char *err)
{
    snprintf(errmsg, size, "template parsing error: %s", err);
}

int cli_format_list(FILE *out, const char *format, struct tmpl_value *const *rows, size_t n,
                    const struct cli_fmt_column *columns, size_t n_columns, char *errmsg,
                    size_t errmsg_size)
{
    bool table;
    char err[TMPL_ERRMSG_SIZE];
    char *text = cli_format_prepare(format, &table);
    struct tmpl *t = tmpl_parse(text, err, sizeof err);
    free(text);
    if (t == NULL) {
        cli_format_wrap(errmsg, errmsg_size, err);
        return -1;
    }
    char *body = NULL;
    size_t body_len = 0;
    FILE *mem = open_memstream(&body, &body_len);
    if (mem == NULL) {
        cli_oom();
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = tmpl_execute(t, mem, rows[i], 0, err, sizeof err);
        fputc('\n', mem);
    }
    fclose(mem);
    if (rc != 0) {
        cli_format_wrap(errmsg, errmsg_size, err);
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
        tmpl_execute(t, mem, header, TMPL_EXEC_HEADER, err, sizeof err);
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

int cli_format_inspect(FILE *out, const char *format, const ProtobufCMessage *const *msgs,
                       size_t n, char *errmsg, size_t errmsg_size)
{
    char err[TMPL_ERRMSG_SIZE];
    struct tmpl *t = tmpl_parse(format, err, sizeof err);
    if (t == NULL) {
        cli_format_wrap(errmsg, errmsg_size, err);
        return -1;
    }
    size_t o = 0;
    errmsg[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        struct tmpl_value *obj = cli_json_message_value(msgs[i]);
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (mem == NULL) {
            cli_oom();
        }
        int rc = tmpl_execute(t, mem, obj, TMPL_EXEC_MISSINGKEY_ERROR, err, sizeof err);
        fclose(mem);
        if (rc == 0) {
            fprintf(out, "%s\n", buf);
        } else if (o < errmsg_size) {
            int w = snprintf(errmsg + o, errmsg_size - o, "%stemplate parsing error: %s",
                             o > 0 ? "\n" : "", err);
            o += w > 0 ? (size_t)w : 0;
        }
        free(buf);
        tmpl_value_free(obj);
    }
    tmpl_free(t);
    return errmsg[0] != '\0' ? -1 : 0;
}
