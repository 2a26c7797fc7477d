// The console's page, style and script, compiled into the binary: `strive serve` needs no files beside it
// and nothing from a CDN. Edit them here; `ConsoleRoutes` serves them with a strict Content-Security-Policy.
enum ConsoleAssets {
    static let html = ##"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Strive console</title>
        <link rel="stylesheet" href="/console/console.css">
        <script src="/console/console.js" type="module"></script>
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <h1>Strive console</h1>
          <nav id="nav" aria-label="Console sections" hidden>
            <a href="#/health">Health</a>
            <a href="#/tables">Tables</a>
            <a href="#/users">Users</a>
            <a href="#/storage">Storage</a>
            <a href="#/background">Background</a>
            <a href="#/realtime">Realtime</a>
            <a href="#/migrations">Migrations</a>
            <a href="#/backups">Backups</a>
            <a href="#/errors">Errors</a>
          </nav>
          <button id="sign-out" type="button" hidden>Sign out</button>
        </header>
        <main id="main" tabindex="-1" aria-live="polite"></main>
        </body>
        </html>
        """##

    static let style = ##"""
        :root { color-scheme: light dark; --accent: #2457c5; --bad: #b3261e; --good: #1b7f3b; --line: #8884; font: 15px/1.45 system-ui, sans-serif; }
        body { margin: 0; }
        .skip { position: absolute; left: -9999px; }
        .skip:focus { left: 1rem; top: 1rem; background: Canvas; padding: .5rem; }
        header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
        header h1 { font-size: 1.1rem; margin: 0; }
        nav { display: flex; gap: 1rem; flex-wrap: wrap; }
        nav a { color: inherit; text-decoration: none; padding: .2rem .1rem; border-bottom: 2px solid transparent; }
        nav a[aria-current="page"] { border-bottom-color: var(--accent); font-weight: 600; }
        #sign-out { margin-left: auto; }
        main { padding: 1rem 1.2rem; max-width: 80rem; }
        main:focus { outline: none; }
        h2 { font-size: 1.3rem; margin: .2rem 0 1rem; }
        table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
        th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        td { max-width: 28rem; overflow-wrap: anywhere; }
        form.inline { display: flex; gap: .6rem; flex-wrap: wrap; align-items: end; margin: .5rem 0 1rem; }
        label { display: flex; flex-direction: column; gap: .2rem; font-size: .9rem; }
        input, select, button { font: inherit; padding: .3rem .5rem; }
        button { cursor: pointer; }
        :focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
        .score { font-size: 3rem; font-weight: 700; }
        .good { color: var(--good); } .bad { color: var(--bad); }
        .error { color: var(--bad); }
        .muted { opacity: .7; }
        form.sign-in { display: grid; gap: .8rem; max-width: 22rem; }
        """##

    static let script = ##"""
        // The Strive console: signs in with email and password, then reads and acts only through Strive's own
        // HTTP APIs with the signed-in account's token. Every value is put on the page as text, never as markup.
        const state = { config: null, token: sessionStorage.getItem("strive.console.token") };
        const main = () => document.getElementById("main");

        function el(tag, attributes = {}, ...children) {
          const node = document.createElement(tag);
          for (const [name, value] of Object.entries(attributes)) {
            if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
            else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
          }
          for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
          return node;
        }

        class APIError extends Error {
          constructor(status, body) {
            super(body?.msg || body?.message || body?.error_description || `HTTP ${status}`);
            this.status = status;
          }
        }

        async function api(method, path, { body, headers = {}, raw = false } = {}) {
          const response = await fetch(path, {
            method,
            headers: {
              apikey: state.config.anon_key,
              ...(state.token ? { Authorization: `Bearer ${state.token}` } : {}),
              ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
              ...headers,
            },
            body: body !== undefined ? JSON.stringify(body) : undefined,
          });
          if (raw) return response;
          const text = await response.text();
          const parsed = text ? JSON.parse(text) : null;
          if (!response.ok) throw new APIError(response.status, parsed);
          return parsed;
        }

        function table(columns, rows) {
          return el("table", {},
            el("thead", {}, el("tr", {}, columns.map((column) => el("th", { scope: "col" }, column.label)))),
            el("tbody", {}, rows.map((row) => el("tr", {}, columns.map((column) => el("td", {}, column.value(row)))))));
        }

        function show(title, ...content) {
          document.title = `${title} · Strive console`;
          main().replaceChildren(el("h2", {}, title), ...content);
          main().focus();
        }

        function failure(error) {
          return el("p", { class: "error", role: "alert" }, error.message);
        }

        // Sign-in: a session from the password grant, kept for this tab only; refused unless the account is a
        // platform admin (the admin API answers 403 to anyone else).
        function signIn(message) {
          document.getElementById("nav").hidden = true;
          document.getElementById("sign-out").hidden = true;
          const form = el("form", { class: "sign-in", "aria-label": "Sign in" },
            el("label", {}, "Email", el("input", { name: "email", type: "email", autocomplete: "username", required: true })),
            el("label", {}, "Password", el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
            el("button", { type: "submit" }, "Sign in"),
            message ? el("p", { class: "error", role: "alert", id: "sign-in-error" }, message) : "");
          form.addEventListener("submit", async (event) => {
            event.preventDefault();
            const data = new FormData(form);
            try {
              state.token = null;
              const session = await api("POST", "/auth/v1/token?grant_type=password", { body: { email: data.get("email"), password: data.get("password") } });
              state.token = session.access_token;
              await api("GET", "/admin/v1/migrations");
              sessionStorage.setItem("strive.console.token", state.token);
              location.hash = "#/health";
              route();
            } catch (error) {
              state.token = null;
              signIn(error.status === 403 ? "This account is not a platform admin." : error.message);
            }
          });
          show("Sign in", form);
        }

        function signOut() {
          if (state.token) api("POST", "/auth/v1/logout?scope=local").catch(() => {});
          state.token = null;
          sessionStorage.removeItem("strive.console.token");
          signIn();
        }

        async function health() {
          const report = await api("GET", "/admin/v1/verify");
          show("Health",
            el("p", {}, el("span", { class: `score ${report.score === 100 ? "good" : "bad"}`, id: "score" }, report.score), " / 100"),
            el("p", { class: "muted" }, `${report.lints_run.length} lints, ${report.findings.length} findings`),
            report.findings.length === 0 ? el("p", {}, "No findings.") : table([
              { label: "Severity", value: (f) => f.severity },
              { label: "Lint", value: (f) => f.lint },
              { label: "Object", value: (f) => f.object },
              { label: "Detail", value: (f) => f.detail },
            ], report.findings));
        }

        const operators = ["eq", "neq", "ilike", "gt", "gte", "lt", "lte", "is"];

        async function tables(params) {
          const all = await api("GET", "/admin/v1/tables");
          const exposed = all.filter((t) => t.schema === "public");
          const name = params.get("table") || exposed[0]?.name;
          const chosen = exposed.find((t) => t.name === name);
          const picker = el("form", { class: "inline", "aria-label": "Choose a table" },
            el("label", {}, "Table", el("select", { name: "table" }, exposed.map((t) => el("option", { value: t.name, selected: t.name === name }, t.name)))),
            el("button", { type: "submit" }, "Open"));
          picker.addEventListener("submit", (event) => { event.preventDefault(); location.hash = `#/tables?table=${encodeURIComponent(new FormData(picker).get("table"))}`; });
          if (!chosen) return show("Tables", picker);

          const page = Math.max(0, Number(params.get("page") || 0));
          const size = 20;
          const query = new URLSearchParams({ select: "*", limit: String(size), offset: String(page * size) });
          const filterColumn = params.get("column"), filterOperator = params.get("op") || "eq", filterValue = params.get("value");
          if (filterColumn && filterValue !== null && filterValue !== "") query.set(filterColumn, `${filterOperator}.${filterValue}`);
          if (params.get("order")) query.set("order", params.get("order"));
          const response = await api("GET", `/rest/v1/${encodeURIComponent(chosen.name)}?${query}`, { raw: true, headers: { Prefer: "count=exact" } });
          const rows = await response.json();
          if (!response.ok) throw new APIError(response.status, rows);
          const total = Number((response.headers.get("Content-Range") || "").split("/")[1] || rows.length);
          const columns = rows.length ? Object.keys(rows[0]) : [];

          const filter = el("form", { class: "inline", "aria-label": "Filter rows" },
            el("label", {}, "Column", el("input", { name: "column", value: filterColumn || "", list: "columns" })),
            el("datalist", { id: "columns" }, columns.map((c) => el("option", { value: c }))),
            el("label", {}, "Operator", el("select", { name: "op" }, operators.map((o) => el("option", { value: o, selected: o === filterOperator }, o)))),
            el("label", {}, "Value", el("input", { name: "value", value: filterValue || "" })),
            el("label", {}, "Order by", el("input", { name: "order", value: params.get("order") || "", placeholder: "name.asc" })),
            el("button", { type: "submit" }, "Apply"));
          filter.addEventListener("submit", (event) => {
            event.preventDefault();
            const data = new FormData(filter);
            const next = new URLSearchParams({ table: chosen.name });
            for (const key of ["column", "op", "value", "order"]) if (data.get(key)) next.set(key, data.get(key));
            location.hash = `#/tables?${next}`;
          });
          const move = (delta) => { const next = new URLSearchParams(params); next.set("table", chosen.name); next.set("page", String(page + delta)); location.hash = `#/tables?${next}`; };
          show("Tables", picker,
            el("h3", {}, `${chosen.schema}.${chosen.name}`),
            el("p", {}, `Row-level security: ${chosen.rls_enabled ? "enabled" : "DISABLED"}, ${chosen.rls_forced ? "forced" : "not forced"}; about ${chosen.estimated_rows} rows.`),
            table([
              { label: "Policy", value: (p) => p.name }, { label: "Command", value: (p) => p.command },
              { label: "Roles", value: (p) => (p.roles || []).join(", ") }, { label: "Using", value: (p) => p.using || "" },
              { label: "With check", value: (p) => p.with_check || "" },
            ], chosen.policies),
            filter,
            el("p", { id: "row-count" }, `${total} rows you may see${total > size ? `, page ${page + 1} of ${Math.ceil(total / size)}` : ""}`),
            table(columns.map((c) => ({ label: c, value: (row) => typeof row[c] === "object" && row[c] !== null ? JSON.stringify(row[c]) : row[c] })), rows),
            el("p", {},
              el("button", { type: "button", disabled: page === 0, onclick: () => move(-1) }, "Previous"), " ",
              el("button", { type: "button", disabled: (page + 1) * size >= total, onclick: () => move(1) }, "Next")));
        }

        async function users(params) {
          const search = params.get("search") || "";
          const query = new URLSearchParams({ per_page: "50" });
          if (search) query.set("filter", search);
          const listed = await api("GET", `/auth/v1/admin/users?${query}`);
          const form = el("form", { class: "inline", role: "search", "aria-label": "Search users" },
            el("label", {}, "Email contains", el("input", { name: "search", type: "search", value: search })), el("button", { type: "submit" }, "Search"));
          form.addEventListener("submit", (event) => { event.preventDefault(); location.hash = `#/users?search=${encodeURIComponent(new FormData(form).get("search"))}`; });
          const invite = el("form", { class: "inline", "aria-label": "Invite a user" },
            el("label", {}, "Invite (email)", el("input", { name: "email", type: "email", required: true })), el("button", { type: "submit" }, "Invite"));
          invite.addEventListener("submit", async (event) => {
            event.preventDefault();
            await act(() => api("POST", "/auth/v1/invite", { body: { email: new FormData(invite).get("email") } }));
          });
          const banned = (u) => u.banned_until && new Date(u.banned_until) > new Date();
          show("Users", form, invite, table([
            { label: "Email", value: (u) => u.email || "(anonymous)" },
            { label: "Created", value: (u) => new Date(u.created_at).toLocaleString() },
            { label: "Last sign-in", value: (u) => (u.last_sign_in_at ? new Date(u.last_sign_in_at).toLocaleString() : "never") },
            { label: "Status", value: (u) => (banned(u) ? "banned" : u.email_confirmed_at ? "active" : "unconfirmed") },
            { label: "Signs in with", value: (u) => (u.identities || []).map((i) => i.provider + (i.provider !== "email" && i.identity_data?.email ? ` (${i.identity_data.email})` : "")).join(", ") || "none" },
            { label: "Actions", value: (u) => el("span", {},
                el("button", { type: "button", onclick: () => act(() => api("PUT", `/auth/v1/admin/users/${u.id}`, { body: { ban_duration: banned(u) ? "none" : "876000h" } })) },
                  banned(u) ? `Unban ${u.email}` : `Ban ${u.email}`), " ",
                el("button", { type: "button", onclick: () => confirm(`Delete ${u.email}?`) && act(() => api("DELETE", `/auth/v1/admin/users/${u.id}`)) }, `Delete ${u.email}`)) },
          ], listed.users));
        }

        async function storage(params) {
          const buckets = await api("GET", "/storage/v1/bucket");
          const bucket = params.get("bucket") || buckets[0]?.id;
          const picker = el("form", { class: "inline", "aria-label": "Choose a bucket" },
            el("label", {}, "Bucket", el("select", { name: "bucket" }, buckets.map((b) => el("option", { value: b.id, selected: b.id === bucket }, b.id)))),
            el("button", { type: "submit" }, "Open"));
          picker.addEventListener("submit", (event) => { event.preventDefault(); location.hash = `#/storage?bucket=${encodeURIComponent(new FormData(picker).get("bucket"))}`; });
          const chosen = buckets.find((b) => b.id === bucket);
          if (!chosen) return show("Storage", picker);
          const prefix = params.get("prefix") || "";
          const items = await api("POST", `/storage/v1/object/list/${encodeURIComponent(bucket)}`, { body: { prefix, limit: 100, offset: 0, sortBy: { column: "name", order: "asc" } } });
          const path = (item) => (prefix ? `${prefix.replace(/\/$/, "")}/` : "") + item.name;
          const objectURL = (item) => `/storage/v1/object/${encodeURIComponent(bucket)}/${path(item).split("/").map(encodeURIComponent).join("/")}`;
          const upload = el("form", { class: "inline", "aria-label": "Upload an object" },
            el("label", {}, "File", el("input", { name: "file", type: "file", required: true })),
            el("label", {}, "Path (optional)", el("input", { name: "path", placeholder: "folder/name.png" })),
            el("button", { type: "submit" }, "Upload"));
          const progress = el("p", { id: "upload-progress", "aria-live": "polite" });
          upload.addEventListener("submit", async (event) => {
            event.preventDefault();
            const data = new FormData(upload);
            const file = data.get("file");
            const target = data.get("path") || (prefix ? `${prefix.replace(/\/$/, "")}/` : "") + file.name;
            await act(() => resumableUpload(bucket, target, file, progress));
          });
          const download = async (item) => {
            const response = await api("GET", objectURL(item), { raw: true });
            if (!response.ok) throw new APIError(response.status, await response.json().catch(() => null));
            const link = el("a", { href: URL.createObjectURL(await response.blob()), download: item.name });
            link.click();
            URL.revokeObjectURL(link.href);
          };
          const preview = el("figure", { id: "preview" });
          const showPreview = async (item) => {
            const url = `/storage/v1/render/image/authenticated/${encodeURIComponent(bucket)}/${path(item).split("/").map(encodeURIComponent).join("/")}?width=256&height=256&resize=contain`;
            const response = await api("GET", url, { raw: true });
            if (!response.ok) throw new APIError(response.status, await response.json().catch(() => null));
            preview.replaceChildren(el("img", { src: URL.createObjectURL(await response.blob()), alt: `Preview of ${item.name}` }),
              el("figcaption", {}, `${item.name}, at most 256 × 256 (${response.headers.get("Content-Type")})`));
          };
          const stats = await api("GET", "/admin/v1/storage");
          const mib = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;
          show("Storage", picker,
            el("p", { id: "storage-stats" },
              `Resumable uploads in progress: ${stats.resumable_uploads} (${mib(stats.resumable_bytes_received)} of ${mib(stats.resumable_bytes_expected)} received). `,
              `Image variants kept: ${stats.image_variants}, ${mib(stats.image_variant_bytes)} of ${mib(stats.image_variant_bound)}. `,
              stats.image_transformations ? "Image transformations: on." : `Image transformations: off (${stats.image_transformations_unavailable}).`),
            el("p", {}, `${chosen.public ? "Public" : "Private"} bucket; size limit ${chosen.file_size_limit ? `${(chosen.file_size_limit / 1048576).toFixed(0)} MiB` : "none"}; types ${(chosen.allowed_mime_types || ["any"]).join(", ")}.`),
            upload, progress,
            items.length === 0 ? el("p", {}, "No objects here.") : table([
              { label: "Name", value: (item) => (item.id ? item.name : el("a", { href: `#/storage?bucket=${encodeURIComponent(bucket)}&prefix=${encodeURIComponent(path(item))}` }, `${item.name}/`)) },
              { label: "Size", value: (item) => (item.metadata?.size !== undefined ? `${item.metadata.size} bytes` : "") },
              { label: "Type", value: (item) => item.metadata?.mimetype || "" },
              { label: "Actions", value: (item) => (item.id ? el("span", {},
                  el("button", { type: "button", onclick: () => act(() => download(item), { reload: false }) }, `Download ${item.name}`), " ",
                  (item.metadata?.mimetype || "").startsWith("image/") && stats.image_transformations
                    ? el("button", { type: "button", onclick: () => act(() => showPreview(item), { reload: false }) }, `Preview ${item.name}`) : "", " ",
                  el("button", { type: "button", onclick: () => confirm(`Delete ${path(item)}?`) && act(() => api("DELETE", `/storage/v1/object/${encodeURIComponent(bucket)}`, { body: { prefixes: [path(item)] } })) }, `Delete ${item.name}`)) : "") },
            ], items), preview);
        }

        // Uploads use the resumable protocol (TUS) in 6 MiB chunks, as supabase-js does for large files: a
        // dropped connection costs one chunk, and the page shows how far it got.
        async function resumableUpload(bucket, target, file, progress) {
          const headers = { apikey: state.config.anon_key, Authorization: `Bearer ${state.token}`, "Tus-Resumable": "1.0.0" };
          const base64 = (text) => btoa(Array.from(new TextEncoder().encode(text), (byte) => String.fromCharCode(byte)).join(""));
          const metadata = [["bucketName", bucket], ["objectName", target], ["contentType", file.type || "application/octet-stream"]];
          const created = await fetch("/storage/v1/upload/resumable", {
            method: "POST",
            headers: { ...headers, "Upload-Length": String(file.size), "Upload-Metadata": metadata.map(([key, value]) => `${key} ${base64(value)}`).join(",") },
          });
          if (!created.ok) throw new APIError(created.status, await created.json().catch(() => null));
          const location = created.headers.get("Location");
          let offset = 0;
          while (offset < file.size) {
            const response = await fetch(location, {
              method: "PATCH", body: file.slice(offset, offset + 6 * 1024 * 1024),
              headers: { ...headers, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
            });
            if (!response.ok) throw new APIError(response.status, await response.json().catch(() => null));
            offset = Number(response.headers.get("Upload-Offset"));
            progress.textContent = `Uploaded ${offset} of ${file.size} bytes.`;
          }
        }

        async function background() {
          const state = await api("GET", "/admin/v1/background");
          const when = (text) => (text ? new Date(text).toLocaleString() : "");
          show("Background",
            el("h3", {}, "HTTP requests from SQL"),
            el("p", { id: "http-queued" }, `${state.http_queued} waiting to be sent.`),
            state.http_answers.length === 0 ? el("p", {}, "No answers yet.") : table([
              { label: "Request", value: (r) => r.id }, { label: "Status", value: (r) => r.status_code ?? "" },
              { label: "Error", value: (r) => r.error_msg || "" }, { label: "Attempts", value: (r) => r.attempts ?? "" },
              { label: "Answered", value: (r) => when(r.created) },
            ], state.http_answers),
            el("h3", {}, "Scheduled jobs"),
            state.jobs.length === 0 ? el("p", {}, "No jobs.") : table([
              { label: "Job", value: (j) => j.jobname || j.jobid }, { label: "Schedule", value: (j) => j.schedule },
              { label: "Runs as", value: (j) => j.username }, { label: "Active", value: (j) => (j.active ? "yes" : "no") },
              { label: "Last run", value: (j) => (j.last_run ? `${j.last_run.status} at ${when(j.last_run.start_time)}: ${j.last_run.return_message || ""}` : "never") },
            ], state.jobs),
            el("h3", {}, "Queues"),
            state.queues.length === 0 ? el("p", {}, "No queues.") : table([
              { label: "Queue", value: (q) => q.queue_name }, { label: "Messages", value: (q) => q.queue_length },
              { label: "Visible", value: (q) => q.queue_visible_length }, { label: "Oldest (s)", value: (q) => q.oldest_msg_age_sec ?? "" },
              { label: "Sent in all", value: (q) => q.total_messages },
            ], state.queues));
        }

        async function realtime() {
          const first = await api("GET", "/realtime/v1/stats");
          await new Promise((resolve) => setTimeout(resolve, 1000));
          const second = await api("GET", "/realtime/v1/stats");
          show("Realtime", table([{ label: "Measure", value: (r) => r[0] }, { label: "Now", value: (r) => r[1] }], [
            ["Sockets", second.sockets], ["Channels", second.channels],
            ["Changes per second", second.changes - first.changes], ["Deliveries per second", second.deliveries - first.deliveries],
            ["Authorisation queries", second.authorisationQueries],
            ["Delivery lag p50 / p99 (last 1000 changes)", second.deliveryLagP50Ms == null ? "no deliveries yet" : `${second.deliveryLagP50Ms.toFixed(1)} ms / ${second.deliveryLagP99Ms.toFixed(1)} ms`],
          ]));
        }

        async function migrations() {
          const status = await api("GET", "/admin/v1/migrations");
          show("Migrations", el("p", {}, status.current ? "The database is current." : "Migrations are pending."),
            status.problems.map((p) => el("p", { class: "error" }, p)),
            table([{ label: "Migration", value: (m) => m.name }, { label: "Kind", value: (m) => m.kind }, { label: "State", value: (m) => m.state }], status.migrations));
        }

        async function backups() {
          const list = await api("GET", "/admin/v1/backups");
          show("Backups", list.length === 0 ? el("p", {}, "No backups yet: run strive backup, or set STRIVE_BACKUP_SCHEDULE.") : table([
            { label: "Started", value: (b) => new Date(b.started_at).toLocaleString() }, { label: "File", value: (b) => b.file },
            { label: "Size", value: (b) => (b.bytes ? `${(b.bytes / 1048576).toFixed(1)} MiB` : "") }, { label: "Objects", value: (b) => b.objects ?? "" },
            { label: "Scheduled", value: (b) => (b.scheduled ? "yes" : "no") }, { label: "Outcome", value: (b) => b.error || "ok" },
          ], list));
        }

        async function errors() {
          const list = await api("GET", "/admin/v1/errors");
          show("Recent errors", list.length === 0 ? el("p", {}, "No server errors on this instance.") : table([
            { label: "When", value: (e) => new Date(e.at).toLocaleString() }, { label: "Status", value: (e) => e.status },
            { label: "Request", value: (e) => `${e.method} ${e.path}` }, { label: "Request id", value: (e) => e.request_id },
            { label: "Cause", value: (e) => e.message },
          ], list));
        }

        // Runs an action, then (unless told not to) shows the page again; a failure is shown on the page.
        async function act(action, { reload = true } = {}) {
          try { await action(); if (reload) await route(); } catch (error) { main().append(failure(error)); }
        }

        const pages = { health, tables, users, storage, background, realtime, migrations, backups, errors };

        async function route() {
          if (!state.token) return signIn();
          const [path, query] = location.hash.replace(/^#\//, "").split("?");
          const page = pages[path] ? path : "health";
          document.getElementById("nav").hidden = false;
          document.getElementById("sign-out").hidden = false;
          for (const link of document.querySelectorAll("nav a")) {
            if (link.getAttribute("href") === `#/${page}`) link.setAttribute("aria-current", "page");
            else link.removeAttribute("aria-current");
          }
          try {
            await pages[page](new URLSearchParams(query || ""));
          } catch (error) {
            if (error.status === 401) return signOut();
            show(page[0].toUpperCase() + page.slice(1), failure(error));
          }
        }

        window.addEventListener("hashchange", route);
        window.addEventListener("DOMContentLoaded", async () => {
          document.getElementById("sign-out").addEventListener("click", signOut);
          state.config = await (await fetch("/console/config.json")).json();
          route();
        });
        """##
}
