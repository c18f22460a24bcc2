// The console's admin pages: staff accounts and API tokens (identity), the group registry
// (broadcast) and the audit log (identity, reports); and the way to the analytics dashboard.
// The console decides nothing: each page calls the service's API and shows its refusal as it
// words it. Everything from outside reaches the DOM through textContent (Console.el).
"use strict";

(function () {
  const C = window.Console;
  const { $, el, api } = C;

  const ROLE_LABELS = {
    admin: "Quản trị viên",
    dispatcher: "Điều phối viên (trực ban)",
    officer: "Cán bộ phường/xã",
    analyst: "Lãnh đạo, phân tích số liệu",
    editor: "Biên tập viên thông báo",
    approver: "Người duyệt thông báo",
    registrar: "Quản lý sổ đăng ký nhóm Zalo",
  };
  // identity refuses admin and approver on a machine token (they need a person's second factor).
  const TOKEN_ROLES = ["dispatcher", "officer", "analyst", "editor"];
  const ACTION_LABELS = {
    signed_in: "Đăng nhập",
    sign_in_failed: "Đăng nhập thất bại",
    sign_in_locked: "Khóa đăng nhập do sai nhiều lần",
    sign_in_refused_locked: "Từ chối đăng nhập khi đang khóa",
    signed_out: "Đăng xuất",
    password_changed: "Đổi mật khẩu",
    password_check_failed: "Sai mật khẩu khi xác nhận",
    second_factor_enrolment_started: "Bắt đầu bật xác thực 2 bước",
    second_factor_enrolment_failed: "Bật xác thực 2 bước thất bại",
    second_factor_enabled: "Bật xác thực 2 bước",
    second_factor_disabled: "Tắt xác thực 2 bước",
    recovery_codes_renewed: "Tạo lại mã khôi phục",
    recovery_code_used: "Dùng mã khôi phục",
    account_created: "Tạo tài khoản",
    account_changed: "Sửa tài khoản",
    account_activated: "Mở khóa tài khoản",
    account_deactivated: "Khóa tài khoản",
    account_reset: "Đặt lại mật khẩu",
    token_created: "Tạo mã truy cập",
    token_revoked: "Thu hồi mã truy cập",
    tipster_revealed: "Xem danh tính người báo",
    notice_approved: "Duyệt thông báo",
    notice_cancelled: "Hủy thông báo",
  };
  const OUTCOME_LABELS = { ok: "thành công", refused: "bị từ chối", locked: "bị khóa" };
  const TABS = ["accounts", "tokens", "groups", "audit"];
  const GROUP_PAGE_SIZE = 50;
  const page = { editing: null, groupPage: 1, groupEditing: null, csv: null, accounts: [] };

  // A list loads again after every write and filter change; only the newest load of a list may
  // draw it. An older, slower answer would put back what a filter or a write just changed, under
  // the person's finger.
  const loads = new Map();
  function newestLoad(list) {
    const generation = (loads.get(list) || 0) + 1;
    loads.set(list, generation);
    return () => loads.get(list) === generation;
  }

  const roles = (list) => list.map((r) => ROLE_LABELS[r] || r).join(", ") || "không có vai trò";
  const wards = (list) => list.map(C.wardName).join(", ") || "chưa gán phường/xã";
  const when = (iso) => (iso ? C.localTime(iso) : "chưa");

  function tabAllowed(name) {
    return C.hasRole($(`tab-${name}`).dataset.roles.split(" "));
  }

  // ---- messages -------------------------------------------------------------------------

  function say(text, isError = false) {
    $("admin-result").textContent = text;
    $("admin-result").classList.toggle("error", isError);
  }

  function failure(exc) {
    // The service's own words, and the fields it names (broadcast's registry, identity's forms).
    const fields = ((exc.body && exc.body.errors) || []).map((e) => `${e.loc.join(".")}: ${e.msg}`);
    return fields.length ? `${exc.message} ${fields.join("; ")}` : exc.message;
  }

  async function send(button, run, success) {
    button.disabled = true;
    say("Đang gửi…");
    try {
      const answer = await run();
      say(success);
      return answer ?? true;
    } catch (exc) {
      say(failure(exc), true);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  function showSecret(label, value) {
    $("secret-label").textContent = label;
    $("secret-value").textContent = value;
    $("secret-copied").textContent = "";
    $("secret-box").hidden = false;
    $("secret-copy").focus();
  }

  async function copySecret() {
    const value = $("secret-value").textContent;
    try {
      await navigator.clipboard.writeText(value);
      $("secret-copied").textContent = "Đã sao chép.";
    } catch {
      // Without clipboard access (an address that is not HTTPS): select it for Ctrl+C.
      getSelection().selectAllChildren($("secret-value"));
      $("secret-copied").textContent = "Không sao chép tự động được: đã chọn sẵn, hãy nhấn Ctrl+C.";
    }
  }

  function hideSecret() {
    $("secret-value").textContent = "";
    $("secret-box").hidden = true;
  }

  // ---- shared form parts ----------------------------------------------------------------

  function choices(form, kind, name, options) {
    const box = form.querySelector(`[data-choices="${kind}"]`);
    if (box.childElementCount) return;
    box.replaceChildren(
      ...options.map(([value, text]) =>
        el("label", { class: "check" }, el("input", { type: "checkbox", name, value }), text),
      ),
    );
  }

  function wardOptions() {
    return [...C.state.wards.entries()];
  }

  function checked(form, name) {
    return [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
  }

  function check(form, name, values) {
    for (const input of form.querySelectorAll(`input[name=${name}]`)) {
      input.checked = values.includes(input.value);
    }
  }

  function row(attrs, title, lines, ...buttons) {
    return el(
      "li",
      attrs,
      el("strong", { text: title }),
      ...lines.map((text) => el("p", { class: "hint", text })),
      buttons.length ? el("p", { class: "buttons" }, ...buttons) : null,
    );
  }

  function button(text, onClick, kind = "small") {
    const node = el("button", { type: "button", class: kind, text });
    node.addEventListener("click", () => onClick(node));
    return node;
  }

  // ---- accounts (identity /accounts) ----------------------------------------------------

  async function loadAccounts() {
    const current = newestLoad("loadAccounts");
    let answer;
    try {
      answer = await api("identity", "/accounts?limit=500");
    } catch (exc) {
      if (!current()) return;
      return say(failure(exc), true);
    }
    if (!current()) return; // a newer load of this list is on its way
    page.accounts = answer.items;
    const rows = answer.items.map((a) =>
      row(
        { "data-account": a.id, class: a.active ? "" : "inactive" },
        `${a.name} (${a.username})`,
        [
          `Vai trò: ${roles(a.roles)}`,
          `Phường/xã: ${wards(a.wards)}`,
          `${a.active ? "Đang hoạt động" : "Đã khóa"} · xác thực 2 bước: ${a.second_factor ? "có" : "chưa"}` +
            ` · đăng nhập gần nhất: ${when(a.last_sign_in_at)}`,
        ],
        button("Sửa", () => editAccount(a)),
        a.active
          ? button("Khóa tài khoản", (b) => setActive(a, false, b))
          : button("Mở khóa", (b) => setActive(a, true, b)),
        button("Đặt lại mật khẩu", (b) => resetAccount(a, b)),
      ),
    );
    $("accounts").replaceChildren(...rows);
    $("accounts-empty").hidden = rows.length > 0;
  }

  function editAccount(account) {
    const form = $("account-form");
    page.editing = account.id;
    form.username.value = account.username;
    form.username.disabled = true; // identity keeps a username for good
    form.name.value = account.name;
    check(form, "roles", account.roles);
    check(form, "wards", account.wards);
    $("account-form-title").textContent = `Sửa tài khoản ${account.username}`;
    form.querySelector("button[type=submit]").textContent = "Lưu thay đổi";
    form.querySelector("[data-cancel]").hidden = false;
    form.name.focus();
  }

  function resetAccountForm() {
    const form = $("account-form");
    page.editing = null;
    form.reset();
    form.username.disabled = false;
    $("account-form-title").textContent = "Tạo tài khoản";
    form.querySelector("button[type=submit]").textContent = "Tạo tài khoản";
    form.querySelector("[data-cancel]").hidden = true;
  }

  async function submitAccount(event) {
    event.preventDefault();
    const form = event.target;
    const body = { name: form.name.value.trim(), roles: checked(form, "roles"), wards: checked(form, "wards") };
    const missing = [];
    if (!page.editing && !form.username.value.trim()) missing.push("tên dùng để đăng nhập");
    if (!body.name) missing.push("họ và tên");
    if (!body.roles.length) missing.push("ít nhất một vai trò");
    if (missing.length) return say(`Còn thiếu: ${missing.join(", ")}.`, true);
    const submit = form.querySelector("button[type=submit]");
    if (page.editing) {
      const path = `/accounts/${encodeURIComponent(page.editing)}`;
      const done = await send(submit, () => api("identity", path, { method: "PATCH", body }), "Đã lưu tài khoản.");
      if (done) resetAccountForm();
    } else {
      body.username = form.username.value.trim();
      const done = await send(submit, () => api("identity", "/accounts", { method: "POST", body }), "Đã tạo tài khoản.");
      if (!done) return;
      resetAccountForm();
      showSecret(
        `Mật khẩu tạm của ${done.account.username} (chỉ hiện lần này; người dùng phải đổi khi đăng nhập lần đầu):`,
        done.temporary_password,
      );
    }
    loadAccounts();
  }

  async function setActive(account, active, node) {
    const path = `/accounts/${encodeURIComponent(account.id)}/${active ? "activate" : "deactivate"}`;
    const text = active ? `Đã mở khóa ${account.username}.` : `Đã khóa ${account.username}: mọi phiên đăng nhập đã kết thúc.`;
    if (await send(node, () => api("identity", path, { method: "POST" }), text)) loadAccounts();
  }

  async function resetAccount(account, node) {
    if (!confirm(`Đặt lại mật khẩu của ${account.username}? Mọi phiên đăng nhập của người này sẽ kết thúc.`)) return;
    const second_factor =
      account.second_factor && confirm("Xóa cả xác thực 2 bước (khi người dùng mất điện thoại)?");
    const path = `/accounts/${encodeURIComponent(account.id)}/reset`;
    const done = await send(node, () => api("identity", path, { method: "POST", body: { second_factor } }), "Đã đặt lại mật khẩu.");
    if (!done) return;
    showSecret(`Mật khẩu tạm mới của ${account.username} (chỉ hiện lần này):`, done.temporary_password);
    loadAccounts();
  }

  // ---- API tokens (identity /tokens) ----------------------------------------------------

  async function loadTokens() {
    const current = newestLoad("loadTokens");
    let items;
    try {
      items = await api("identity", "/tokens");
    } catch (exc) {
      if (!current()) return;
      return say(failure(exc), true);
    }
    if (!current()) return; // a newer load of this list is on its way
    const rows = items.map((t) =>
      row(
        { "data-token": t.id, class: t.revoked_at ? "inactive" : "" },
        t.name,
        [
          `Vai trò: ${roles(t.roles)} · phường/xã: ${wards(t.wards)}`,
          `Tạo lúc ${when(t.created_at)} · dùng gần nhất: ${t.last_used_at ? C.localTime(t.last_used_at) : "chưa dùng"}`,
          t.revoked_at ? `Đã thu hồi lúc ${C.localTime(t.revoked_at)}` : "Đang hiệu lực",
        ],
        ...(t.revoked_at ? [] : [button("Thu hồi", (b) => revokeToken(t, b))]),
      ),
    );
    $("tokens").replaceChildren(...rows);
    $("tokens-empty").hidden = rows.length > 0;
  }

  async function submitToken(event) {
    event.preventDefault();
    const form = event.target;
    const body = { name: form.name.value.trim(), roles: checked(form, "roles"), wards: checked(form, "wards") };
    const missing = [];
    if (!body.name) missing.push("tên");
    if (!body.roles.length) missing.push("ít nhất một vai trò");
    if (missing.length) return say(`Còn thiếu: ${missing.join(", ")}.`, true);
    const submit = form.querySelector("button[type=submit]");
    const done = await send(submit, () => api("identity", "/tokens", { method: "POST", body }), "Đã tạo mã truy cập.");
    if (!done) return;
    form.reset();
    showSecret(
      `Mã truy cập «${done.token.name}» (chỉ hiện lần này; gửi kèm tiêu đề Authorization: Bearer …):`,
      done.secret,
    );
    loadTokens();
  }

  async function revokeToken(token, node) {
    if (!confirm(`Thu hồi mã «${token.name}»? Mọi dịch vụ sẽ từ chối mã này.`)) return;
    const path = `/tokens/${encodeURIComponent(token.id)}/revoke`;
    if (await send(node, () => api("identity", path, { method: "POST" }), `Đã thu hồi mã «${token.name}».`)) {
      loadTokens();
    }
  }

  // ---- the group registry (broadcast /groups) -------------------------------------------

  async function loadGroups() {
    const current = newestLoad("loadGroups");
    const ward = $("group-filter").ward.value;
    const params = new URLSearchParams({ page: String(page.groupPage), page_size: String(GROUP_PAGE_SIZE) });
    if (ward) params.set("ward", ward);
    let answer;
    try {
      answer = await api("broadcast", `/groups?${params}`);
    } catch (exc) {
      if (!current()) return;
      $("groups").replaceChildren();
      return say(failure(exc), true);
    }
    if (!current()) return; // a newer load of this list is on its way
    const rows = answer.items.map((g) =>
      row(
        { "data-group": g.group_id, class: g.active ? "" : "inactive" },
        g.name,
        [
          `${g.ward ? C.wardName(g.ward) : "Chưa gán phường/xã"}${g.hamlet ? ` · ${g.hamlet}` : ""} · ` +
            `${g.member_count} thành viên${g.households === null ? "" : ` · ${g.households} hộ`}`,
          `${g.channel === "manual" ? "Nhóm thường, cán bộ chuyển tiếp" : "Nhóm của OA"}` +
            `${g.officer_name ? ` · phụ trách: ${g.officer_name}` : ""}` +
            `${g.active ? "" : " · ngừng dùng"}${g.is_test ? " · nhóm thử" : ""}`,
        ],
        button("Sửa", () => editGroup(g)),
      ),
    );
    $("groups").replaceChildren(...rows);
    $("groups-empty").hidden = rows.length > 0;
    const pages = Math.max(1, Math.ceil(answer.total / GROUP_PAGE_SIZE));
    $("groups-page").textContent = `Trang ${page.groupPage}/${pages} · ${answer.total} nhóm`;
    $("groups-prev").disabled = page.groupPage <= 1;
    $("groups-next").disabled = page.groupPage >= pages;
  }

  function editGroup(group) {
    const form = $("group-form");
    page.groupEditing = group;
    for (const name of ["name", "hamlet", "member_count", "households", "officer_id", "officer_name", "channel"]) {
      form[name].value = group[name] ?? "";
    }
    form.ward.value = group.ward || "";
    form.active.checked = group.active;
    form.is_test.checked = group.is_test;
    $("group-form-title").textContent = `Sửa nhóm ${group.group_id}`;
    form.hidden = false;
    form.name.focus();
  }

  function groupFromForm(form) {
    const text = (name) => form[name].value.trim() || null;
    const number = (name) => (form[name].value === "" ? null : Number(form[name].value));
    return {
      group_id: page.groupEditing.group_id,
      name: form.name.value.trim(),
      ward: form.ward.value || null,
      hamlet: text("hamlet"),
      member_count: number("member_count") ?? 0,
      households: number("households"),
      officer_id: text("officer_id"),
      officer_name: text("officer_name"),
      channel: form.channel.value,
      active: form.active.checked,
      is_test: form.is_test.checked,
    };
  }

  function groupProblems(group) {
    const problems = [];
    if (!group.name) problems.push("tên nhóm");
    if (!group.ward) problems.push("phường/xã");
    if (!Number.isInteger(group.member_count) || group.member_count < 0) problems.push("số thành viên (số nguyên ≥ 0)");
    if (group.households !== null && (!Number.isInteger(group.households) || group.households < 0)) {
      problems.push("số hộ (số nguyên ≥ 0)");
    }
    if (group.officer_id && !/^[0-9A-Za-z_-]{1,40}$/.test(group.officer_id)) problems.push("mã Zalo cán bộ (chữ, số, - và _)");
    if (group.channel === "manual" && !group.officer_id) problems.push("cán bộ phụ trách của nhóm thường");
    return problems;
  }

  async function submitGroup(event) {
    event.preventDefault();
    const form = event.target;
    const group = groupFromForm(form);
    const problems = groupProblems(group);
    if (problems.length) return say(`Cần sửa: ${problems.join(", ")}.`, true);
    const path = `/groups/${encodeURIComponent(group.group_id)}`;
    const submit = form.querySelector("button[type=submit]");
    if (await send(submit, () => api("broadcast", path, { method: "PUT", body: group }), `Đã lưu nhóm ${group.name}.`)) {
      form.hidden = true;
      loadGroups();
    }
  }

  function importErrors(exc) {
    // broadcast names each bad row: loc = ["row", line number in the file].
    const rows = ((exc.body && exc.body.errors) || []).map((e) =>
      el("li", { text: e.loc[0] === "row" ? `Dòng ${e.loc[1]}: ${e.msg}` : e.msg }),
    );
    return [el("p", { class: "error", text: exc.message }), rows.length ? el("ul", { class: "import-errors" }, ...rows) : null];
  }

  async function checkImport(event) {
    event.preventDefault();
    const form = event.target;
    const file = form.file.files[0];
    $("import-confirm").hidden = true;
    page.csv = null;
    if (!file) return $("import-preview").replaceChildren(el("p", { class: "error", text: "Hãy chọn một tệp CSV." }));
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    $("import-preview").replaceChildren(el("p", { text: "Đang kiểm tra…" }));
    try {
      const csv = await file.text();
      const answer = await api("broadcast", "/groups/import?dry_run=true", {
        method: "POST",
        raw: csv,
        extraHeaders: { "Content-Type": "text/csv; charset=utf-8" },
      });
      page.csv = csv;
      const moves = answer.ward_moves ? `, trong đó ${answer.ward_moves} nhóm chuyển sang phường/xã khác` : "";
      $("import-preview").replaceChildren(el("p", { text: `Tệp hợp lệ: ${answer.groups} nhóm${moves}. Chưa có gì được lưu.` }));
      $("import-confirm").textContent = `Nhập ${answer.groups} nhóm vào sổ`;
      $("import-confirm").hidden = false;
    } catch (exc) {
      $("import-preview").replaceChildren(...importErrors(exc).filter(Boolean));
    } finally {
      submit.disabled = false;
    }
  }

  async function confirmImport() {
    const node = $("import-confirm");
    const run = () =>
      api("broadcast", "/groups/import", {
        method: "POST",
        raw: page.csv,
        extraHeaders: { "Content-Type": "text/csv; charset=utf-8" },
      });
    const done = await send(node, run, "Đã nhập vào sổ.");
    if (!done) return; // the checked file stays, to try again
    say(`Đã nhập ${done.imported} nhóm vào sổ.`);
    page.csv = null;
    node.hidden = true;
    $("import-form").reset();
    $("import-preview").replaceChildren();
    loadGroups();
  }

  // ---- the audit log (identity /audit, reports /audit) ----------------------------------

  function vietnamTime(local) {
    return local ? `${local}:00+07:00` : null; // datetime-local is wall-clock time in Vietnam
  }

  async function loadAudit() {
    const current = newestLoad("loadAudit");
    const form = $("audit-filter");
    const params = new URLSearchParams({ limit: "200" });
    for (const name of ["actor_id", "action"]) if (form[name].value) params.set(name, form[name].value);
    const since = vietnamTime(form.since.value);
    if (since) params.set("since", since);
    let entries;
    try {
      entries = await api("identity", `/audit?${params}`);
    } catch (exc) {
      if (!current()) return;
      return say(failure(exc), true);
    }
    if (!current()) return; // a newer load of this list is on its way
    // A sign-in's entry names the account only by id: the name from the list of accounts.
    const names = new Map(page.accounts.map((a) => [a.id, a.name]));
    const rows = entries.map((e) =>
      row(
        { class: e.outcome === "ok" ? "" : "refused" },
        `${C.localTime(e.at)} · ${ACTION_LABELS[e.action] || e.action}`,
        [
          `${e.actor_name || names.get(e.actor_id) || e.actor_id || "không rõ người"} · ${OUTCOME_LABELS[e.outcome] || e.outcome} · dịch vụ ${e.service}`,
          `Từ ${e.address || "không rõ địa chỉ"}${e.target ? ` · đối tượng ${e.target}` : ""}`,
        ],
      ),
    );
    $("audit").replaceChildren(...rows);
    $("audit-empty").hidden = rows.length > 0;
    loadReveals(form.actor_id.value, form.action.value, since);
  }

  async function loadReveals(actor, action, since) {
    // reports keeps each reveal with its reason and case; it filters nothing, so filter here.
    let entries;
    try {
      entries = await api("reports", "/audit?limit=500");
    } catch (exc) {
      return $("reveals").replaceChildren(el("li", { class: "error", text: failure(exc) }));
    }
    const shown = entries.filter(
      (e) =>
        (!actor || e.actor === actor) &&
        (!action || action === "tipster_revealed") &&
        (!since || Date.parse(e.at) >= Date.parse(since)),
    );
    const names = new Map(page.accounts.map((a) => [a.id, a.name]));
    $("reveals").replaceChildren(
      ...shown.map((e) =>
        row({}, `${C.localTime(e.at)} · tin báo ${e.case_ref}`, [
          `${names.get(e.actor) || e.actor} · bí danh ${e.pseudonym}`,
          `Lý do: ${e.reason}`,
        ]),
      ),
    );
    $("reveals-empty").hidden = shown.length > 0;
  }

  async function fillAuditFilter() {
    const form = $("audit-filter");
    if (form.action.options.length === 1) C.fillSelect(form.action, ACTION_LABELS);
    if (!page.accounts.length) {
      try {
        page.accounts = (await api("identity", "/accounts?limit=500")).items;
      } catch {
        return; // the log itself says why
      }
    }
    if (form.actor_id.options.length === 1) {
      for (const a of page.accounts) form.actor_id.append(el("option", { value: a.id, text: `${a.name} (${a.username})` }));
    }
  }

  // ---- routing: #/admin/<tab> -------------------------------------------------------------

  function openTab(hash) {
    const wanted = hash.split("/")[2];
    const name = TABS.includes(wanted) && tabAllowed(wanted) ? wanted : TABS.find(tabAllowed);
    C.show("admin-view");
    say("");
    hideSecret();
    for (const tab of TABS) {
      $(`tab-${tab}`).hidden = !tabAllowed(tab);
      if (tab === name) $(`tab-${tab}`).setAttribute("aria-current", "page");
      else $(`tab-${tab}`).removeAttribute("aria-current");
      $(`admin-${tab}`).hidden = tab !== name;
    }
    const ward = [["", "— chọn phường/xã —"], ...wardOptions()];
    choices($("account-form"), "roles", "roles", Object.entries(ROLE_LABELS));
    choices($("account-form"), "wards", "wards", wardOptions());
    choices($("token-form"), "token-roles", "roles", TOKEN_ROLES.map((r) => [r, ROLE_LABELS[r]]));
    choices($("token-form"), "wards", "wards", wardOptions());
    if ($("group-form").ward.options.length === 0) {
      $("group-form").ward.append(...ward.map(([value, text]) => el("option", { value, text })));
      $("group-filter").ward.append(...wardOptions().map(([value, text]) => el("option", { value, text })));
    }
    if (name === "accounts") loadAccounts();
    if (name === "tokens") loadTokens();
    if (name === "groups") loadGroups();
    if (name === "audit") fillAuditFilter().then(loadAudit);
  }

  const adminPage = {
    landing: "#/admin/accounts",
    allowed: () => TABS.some(tabAllowed),
    match: (hash) => hash.startsWith("#/admin"),
    open: openTab,
    entered() {
      $("nav-admin").hidden = !this.allowed();
      $("nav-admin").href = `#/admin/${TABS.find(tabAllowed) || "accounts"}`;
      $("nav-dashboard").hidden = !dashboardPage.allowed();
    },
  };
  // Leaders and analysts: analytics' own dashboard, served through the console's door with the
  // same session (docs/console.md); an analyst lands on the way to it.
  const dashboardPage = {
    landing: "#/dashboard",
    allowed: () => C.hasRole(["analyst", "admin"]),
    match: (hash) => hash === "#/dashboard",
    open: () => C.show("dashboard-view"),
    entered() {},
  };
  C.PAGES.push(adminPage, dashboardPage);

  document.addEventListener("DOMContentLoaded", () => {
    $("account-form").addEventListener("submit", submitAccount);
    $("account-form").querySelector("[data-cancel]").addEventListener("click", resetAccountForm);
    $("token-form").addEventListener("submit", submitToken);
    $("group-form").addEventListener("submit", submitGroup);
    $("group-form").querySelector("[data-cancel]").addEventListener("click", () => ($("group-form").hidden = true));
    $("group-filter").addEventListener("change", () => {
      page.groupPage = 1;
      loadGroups();
    });
    $("groups-prev").addEventListener("click", () => {
      page.groupPage -= 1;
      loadGroups();
    });
    $("groups-next").addEventListener("click", () => {
      page.groupPage += 1;
      loadGroups();
    });
    $("import-form").addEventListener("submit", checkImport);
    $("import-form").file.addEventListener("change", () => {
      page.csv = null;
      $("import-confirm").hidden = true;
      $("import-preview").replaceChildren();
    });
    $("import-confirm").addEventListener("click", confirmImport);
    $("audit-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      loadAudit();
    });
    $("secret-copy").addEventListener("click", copySecret);
    $("secret-done").addEventListener("click", hideSecret);
  });
})();
