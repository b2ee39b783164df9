// SPDX-License-Identifier: MIT
// Benchmark peer of bench/todo_pg.sh: GET /todos/:id of the todo API in Go, net/http and
// database/sql with lib/pq (Debian's golang-github-lib-pq-dev), on the table
// examples/todo_pg creates. Same answer as Chopin's services: the todo as compact JSON
// {"id","title","done","created_at"}, 404 {"error":"todo not found"}, 400 for a bad id.
//
// Usage: todo_pg_go-bench PORT CONNINFO   (CONNINFO: a libpq-style string lib/pq reads,
// "host=/tmp/dir user=chopin dbname=postgres sslmode=disable")
// GOMAXPROCS=1 (set by the program too): one thread runs Go code, as the Chopin service
// runs one worker. database/sql runs one query per connection at a time, so it keeps a
// pool: TODO_PG_GO_CONNS connections (default 8), all kept idle between requests.
package main

import (
	"database/sql"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"

	_ "github.com/lib/pq"
)

type todo struct {
	ID        int64  `json:"id"`
	Title     string `json:"title"`
	Done      bool   `json:"done"`
	CreatedAt *int64 `json:"created_at"`
}

type errorBody struct {
	Error string `json:"error"`
}

func answer(w http.ResponseWriter, status int, v interface{}) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: todo_pg_go-bench PORT CONNINFO")
	}
	runtime.GOMAXPROCS(1)
	conns := 8
	if v, err := strconv.Atoi(os.Getenv("TODO_PG_GO_CONNS")); err == nil && v > 0 {
		conns = v
	}
	db, err := sql.Open("postgres", os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	selectOne, err := db.Prepare("SELECT id, title, done, created_at FROM todos WHERE id = $1")
	if err != nil {
		log.Fatal(err)
	}

	http.HandleFunc("/todos/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			answer(w, http.StatusMethodNotAllowed, errorBody{"method not allowed"})
			return
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/todos/"), 10, 64)
		if err != nil || id <= 0 {
			answer(w, http.StatusBadRequest, errorBody{"id must be a positive integer"})
			return
		}
		var t todo
		err = selectOne.QueryRowContext(r.Context(), id).Scan(&t.ID, &t.Title, &t.Done, &t.CreatedAt)
		switch {
		case err == sql.ErrNoRows:
			answer(w, http.StatusNotFound, errorBody{"todo not found"})
		case err != nil:
			answer(w, http.StatusServiceUnavailable, errorBody{"database unavailable"})
		default:
			answer(w, http.StatusOK, t)
		}
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Args[1], nil))
}
