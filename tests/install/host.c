/* A tiny host built against an installed quiesce with pkg-config only
** (tests/install/install_test.sh, scripts/package): registers the shim in
** place of "unix", opens a database, commits, and checks that the commit
** went through the shim (PRAGMA quiesce_status).
** usage: host DATABASE */
#include <quiesce/quiesce.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(sqlite3 *db, const char *what) {
  fprintf(stderr, "host: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
  sqlite3_close(db);
  return 1;
}

static int print_row(void *arg, int n, char **values, char **names) {
  (void)names;
  if (n == 1 && values[0]) {
    snprintf((char *)arg, 4096, "%s", values[0]);
    printf("%s\n", values[0]);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: host DATABASE\n");
    return 2;
  }
  sqlite3_initialize();
  quiesce_config config;
  memset(&config, 0, sizeof config);
  config.size = sizeof config;
  config.vfs_name = "unix"; /* take over the default VFS under its name */
  int rc = quiesce_register(&config);
  if (rc != SQLITE_OK) {
    fprintf(stderr, "host: quiesce_register: %d\n", rc);
    return 1;
  }
  sqlite3 *db = NULL;
  if (sqlite3_open(argv[1], &db) != SQLITE_OK) return fail(db, "open");
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL;"
                   "CREATE TABLE IF NOT EXISTS t(x);"
                   "BEGIN; INSERT INTO t VALUES('from an installed quiesce');"
                   "COMMIT;",
                   NULL, NULL, NULL) != SQLITE_OK) {
    return fail(db, "commit");
  }
  char *vfs = NULL;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_VFSNAME, &vfs);
  printf("vfs: %s\n", vfs ? vfs : "?");
  const int through_shim = vfs && strncmp(vfs, "quiesce/", 8) == 0;
  sqlite3_free(vfs);
  char status[4096] = "";
  if (sqlite3_exec(db, "PRAGMA quiesce_status=json", print_row, status,
                   NULL) != SQLITE_OK) {
    return fail(db, "PRAGMA quiesce_status");
  }
  sqlite3_close(db);
  quiesce_shutdown();
  if (!through_shim) {
    fprintf(stderr, "host: the database was not opened through the shim\n");
    return 1;
  }
  /* Every commit counted: the switch to WAL, CREATE, INSERT. */
  const char *generation = strstr(status, "\"generation\":");
  if (generation == NULL ||
      strtoull(generation + strlen("\"generation\":"), NULL, 10) < 2) {
    fprintf(stderr, "host: expected the commits counted in %s\n", status);
    return 1;
  }
  printf("host: committed through quiesce\n");
  return 0;
}
