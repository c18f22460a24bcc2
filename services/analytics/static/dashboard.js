"use strict";
// The dashboard reads the metrics endpoints with the staff session (the cookie set by the
// identity service's sign-in, sent by the browser itself) or an API token (sessionStorage, or
// #token=... in the address for kiosks and tests) and draws them with the local Chart.js.
(function () {
  const KEY = "binhyen-staff-token";
  const KIND_LABELS = { user_message: "Người dân nhắn OA", group_message: "Tin trong nhóm", oa_message: "OA gửi" };
  const COLORS = ["#b3261e", "#1f6feb", "#2da44e", "#bf8700", "#8250df", "#57606a"];
  const charts = {};
  const fmt = new Intl.NumberFormat("vi-VN");
  const $ = (id) => document.getElementById(id);

  function token() {
    const match = location.hash.match(/token=([^&]+)/);
    if (match) {
      sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(KEY);
  }

  function authHeaders() {
    const value = token();
    return value ? { Authorization: "Bearer " + value } : {};
  }

  function query() {
    const params = new URLSearchParams();
    for (const id of ["from", "to", "interval", "unit_set"]) if ($(id).value) params.set(id, $(id).value);
    return params;
  }

  async function get(path, params) {
    const response = await fetch(path + "?" + params.toString(), {
      headers: authHeaders(), credentials: "same-origin",
    });
    const body = await response.json().catch(() => ({}));
    if (response.status === 401 || response.status === 403) {
      const error = new Error(body.detail || "Không có quyền xem số liệu.");
      error.auth = true;
      throw error;
    }
    if (!response.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : "Lỗi " + response.status);
    return body;
  }

  function draw(id, config, total) {
    if (charts[id]) charts[id].destroy();
    const canvas = $(id);
    config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: true }, config.options || {});
    charts[id] = new Chart(canvas, config);
    canvas.dataset.total = String(total);
    canvas.dataset.points = String(config.data.labels.length);
    canvas.dataset.rendered = "1";
  }

  // Everything from the API (titles, notice ids, ward names) is text: the DOM is built with
  // textContent, never innerHTML, so a title like "<img onerror=...>" shows as written.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function row(cellTag, values) {
    const tr = el("tr");
    for (const value of values) tr.append(el(cellTag, "", value));
    return tr;
  }

  function table(id, header, rows) {
    $(id).replaceChildren(row("th", header), ...rows.map((r) => row("td", r)));
  }

  function card(label, value, metric) {
    const node = el("div", "card");
    const shown = el("div", "value", value);
    if (metric) shown.dataset.metric = label;
    node.append(el("div", "label", label), shown);
    return node;
  }

  function cards(overview) {
    const items = [
      ["Người quan tâm (theo sự kiện)", overview.followers],
      ["Lượt quan tâm mới", overview.follows],
      ["Lượt bỏ quan tâm", overview.unfollows],
      ["Tin nhắn", overview.messages],
      ["Nhóm Zalo", overview.groups],
      ["Độ phủ hộ gia đình", overview.coverage_percent === null ? "—" : overview.coverage_percent + "%"],
      ["Tin báo", overview.tips],
      ["Thông báo đã phát", overview.notices],
    ];
    $("cards").replaceChildren(...items.map(([label, value]) =>
      card(label, typeof value === "number" ? fmt.format(value) : value, true)));
    $("demo-note").hidden = !overview.demo_registry;
  }

  function followers(data) {
    const labels = data.series.map((r) => r.bucket);
    let running = data.current_from_events - data.totals.net;
    const cumulative = data.series.map((r) => (running += r.net));
    draw("chart-followers", {
      type: "bar",
      data: { labels, datasets: [
        { type: "line", label: "Tổng người quan tâm", data: cumulative, borderColor: COLORS[1], yAxisID: "total" },
        { label: "Quan tâm mới", data: data.series.map((r) => r.follows), backgroundColor: COLORS[2] },
        { label: "Bỏ quan tâm", data: data.series.map((r) => -r.unfollows), backgroundColor: COLORS[0] },
      ] },
      options: { scales: { total: { position: "right" } } },
    }, data.totals.follows);
    table("table-followers", ["Thời gian", "Quan tâm", "Bỏ", "Tăng ròng"],
      data.series.filter((r) => r.follows || r.unfollows).map((r) => [r.bucket, r.follows, r.unfollows, r.net]));
  }

  function messages(data) {
    const kinds = Object.keys(KIND_LABELS);
    draw("chart-messages", {
      type: "bar",
      data: { labels: data.series.map((r) => r.bucket), datasets: kinds.map((k, i) => ({
        label: KIND_LABELS[k], data: data.series.map((r) => r[k]), backgroundColor: COLORS[i + 1] })) },
      options: { scales: { x: { stacked: true }, y: { stacked: true } } },
    }, data.series.reduce((sum, r) => sum + r.total, 0));
    table("table-messages", ["Thời gian"].concat(kinds.map((k) => KIND_LABELS[k]), ["Tổng"]),
      data.series.filter((r) => r.total).map((r) => [r.bucket].concat(kinds.map((k) => r[k]), [r.total])));
  }

  function coverage(data) {
    const select = $("ward");
    if (select.options.length === 1) {
      for (const w of data.wards) select.add(new Option(w.name, w.ward));
    }
    const ward = select.value;
    const rows = data.wards.filter((w) => !ward || w.ward === ward);
    draw("chart-coverage", {
      type: "bar",
      data: { labels: rows.map((w) => w.name), datasets: [
        { label: "% hộ được phủ", data: rows.map((w) => w.percent === null ? 0 : w.percent), backgroundColor: COLORS[1] },
      ] },
      options: { indexAxis: "y", scales: { x: { min: 0, max: 100 } } },
    }, rows.reduce((sum, w) => sum + w.households_covered, 0));
    table("table-coverage", ["Phường/xã", "Nhóm", "Thành viên", "Hộ được phủ", "Tổng số hộ", "%"],
      rows.map((w) => [w.name, w.groups, fmt.format(w.members), fmt.format(w.households_covered),
        w.households_total === null ? "chưa có" : fmt.format(w.households_total),
        w.percent === null ? "—" : w.percent + "%"]));
  }

  const CATEGORY_LABELS = { theft: "Trộm cắp", robbery: "Cướp", drugs: "Ma tuý", gambling: "Cờ bạc",
    fraud: "Lừa đảo", violence: "Bạo lực", domestic_violence: "Bạo lực gia đình",
    public_disorder: "Gây rối", traffic: "Giao thông", suspicious: "Khả nghi", fire: "Cháy nổ", other: "Khác" };

  function wardName(slug) {
    const option = Array.from($("ward").options).find((o) => o.value === slug);
    return option ? option.text : slug;
  }

  function tips(data) {
    const ward = $("ward").value;
    const rows = data.rows.filter((r) => !ward || r.ward === ward);
    const wards = Array.from(new Set(rows.map((r) => r.ward))).sort();
    const categories = Array.from(new Set(rows.map((r) => r.category))).sort();
    const count = (w, c) => rows.filter((r) => r.ward === w && r.category === c).reduce((s, r) => s + r.tips, 0);
    draw("chart-tips", {
      type: "bar",
      data: { labels: wards.map(wardName), datasets: categories.map((c, i) => ({
        label: CATEGORY_LABELS[c] || c, data: wards.map((w) => count(w, c)), backgroundColor: COLORS[i % COLORS.length] })) },
      options: { scales: { x: { stacked: true }, y: { stacked: true } } },
    }, rows.reduce((s, r) => s + r.tips, 0));
    table("table-tips", ["Phường/xã", "Loại", "Mức ưu tiên", "Số tin"],
      rows.map((r) => [wardName(r.ward), CATEGORY_LABELS[r.category] || r.category, r.priority, r.tips]));
  }

  function responses(data) {
    const ward = $("ward").value;
    const rows = data.wards.filter((r) => !ward || r.ward === ward);
    const value = (v) => (v === null ? 0 : v);
    draw("chart-response", {
      type: "bar",
      data: { labels: rows.map((r) => wardName(r.ward)), datasets: [
        { label: "Phản hồi đầu tiên — trung vị", data: rows.map((r) => value(r.response_median_min)), backgroundColor: COLORS[1] },
        { label: "Phản hồi đầu tiên — 90%", data: rows.map((r) => value(r.response_p90_min)), backgroundColor: COLORS[4] },
        { label: "Kết thúc — trung vị", data: rows.map((r) => value(r.closure_median_min)), backgroundColor: COLORS[2] },
      ] },
    }, rows.reduce((s, r) => s + r.cases, 0));
    const show = (v) => (v === null ? "—" : fmt.format(v));
    table("table-response", ["Phường/xã", "Vụ", "Đã phản hồi", "Trung vị", "90%", "Đã kết thúc", "Trung vị", "90%"],
      rows.map((r) => [wardName(r.ward), r.cases, r.responded, show(r.response_median_min), show(r.response_p90_min),
        r.closed, show(r.closure_median_min), show(r.closure_p90_min)]));
  }

  function reach(data, effect) {
    const notices = data.notices.slice(0, 12);
    const effects = Object.fromEntries(effect.notices.map((e) => [e.notice, e]));
    draw("chart-reach", {
      type: "bar",
      data: { labels: notices.map((n) => n.notice), datasets: [
        { label: "Đã gửi", data: notices.map((n) => n.sent), backgroundColor: COLORS[2] },
        { label: "Chờ cán bộ xác nhận", data: notices.map((n) => n.awaiting_confirmation), backgroundColor: COLORS[3] },
        { label: "Thất bại", data: notices.map((n) => n.failed), backgroundColor: COLORS[0] },
      ] },
      options: { scales: { x: { stacked: true }, y: { stacked: true } } },
    }, notices.reduce((s, n) => s + n.members_reached, 0));
    table("table-reach", ["Thông báo", "Ngày", "Đích", "Đã gửi", "Thất bại", "Chờ", "Thành viên nhận", "Tin báo 14 ngày trước → sau"],
      notices.map((n) => {
        const e = effects[n.notice];
        return [n.notice, (n.first_at || "").slice(0, 10), n.targets, n.sent, n.failed, n.awaiting_confirmation,
          fmt.format(n.members_reached), e ? e.tips_before + " → " + e.tips_after : "—"];
      }));
  }

  function articles(data) {
    const top = data.top;
    const show = (v) => (v === null || v === undefined ? "—" : fmt.format(v));
    draw("chart-articles", {
      type: "bar",
      data: { labels: top.map((a) => (a.title || a.article_id).slice(0, 40)), datasets: [
        { label: "Lượt xem", data: top.map((a) => a.views || 0), backgroundColor: COLORS[1] },
        { label: "Lượt chia sẻ", data: top.map((a) => a.shares || 0), backgroundColor: COLORS[2] },
      ] },
      options: { indexAxis: "y" },
    }, top.reduce((s, a) => s + (a.views || 0), 0));
    table("table-articles", ["Bài viết", "Ngày", "Lượt xem", "Tăng", "Chia sẻ", "Tăng"],
      top.map((a) => [a.title || a.article_id, a.day, show(a.views), show(a.views_increase), show(a.shares), show(a.shares_increase)]));
  }

  async function load() {
    $("status").className = "";
    $("status").textContent = "Đang tải số liệu…";
    const params = query();
    try {
      const [overview, follow, message, cover, tip, response, broadcast, effect] = await Promise.all([
        get("metrics/overview", params), get("metrics/followers", params),
        get("metrics/messages", params), get("metrics/coverage", params),
        get("metrics/tips", params), get("metrics/response-times", params),
        get("metrics/broadcasts", params), get("metrics/notice-effect", new URLSearchParams()),
      ]);
      const article = await get("metrics/articles", params);
      if (!$("from").value) { $("from").value = overview.from; $("to").value = overview.to; }
      cards(overview);
      followers(follow);
      messages(message);
      coverage(cover);
      tips(tip);
      responses(response);
      reach(broadcast, effect);
      articles(article);
      if (follow.current_from_snapshots !== null) {
        $("cards").append(card("Người quan tâm theo Zalo (chênh lệch so với sự kiện)",
          fmt.format(follow.current_from_snapshots) + " (" +
          (follow.difference >= 0 ? "+" : "") + fmt.format(follow.difference) + ")"));
      }
      $("status").textContent = "Số liệu từ " + overview.from + " đến " + overview.to + ".";
      document.body.dataset.loaded = "1";
    } catch (error) {
      $("status").className = "error";
      $("status").textContent = error.message;
      if (error.auth) showLogin();
    }
  }

  async function download(name) {
    const params = query();
    params.set("format", "csv");
    const response = await fetch("metrics/" + name + "?" + params, { headers: authHeaders(), credentials: "same-origin" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = name + ".csv";
    link.click();
  }

  function showLogin() { $("login").hidden = false; $("app").hidden = true; }
  function showApp() { $("login").hidden = true; $("app").hidden = false; load(); }

  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $("token").value);
    showApp();
  });
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  $("unit_set").addEventListener("change", () => {
    while ($("ward").options.length > 1) $("ward").remove(1);  // other units, other names
    load();
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); showLogin(); });
  for (const link of document.querySelectorAll("[data-csv]")) {
    link.addEventListener("click", (e) => { e.preventDefault(); download(link.dataset.csv); });
  }
  if (typeof Chart === "undefined") {
    document.body.prepend(el("p", "demo", "Chưa cài thư viện biểu đồ (chạy make dashboard-assets)."));
  }
  // Served through the staff console's door (/api/analytics/dashboard): a way back to it.
  if (location.pathname.startsWith("/api/analytics/")) $("console-link").hidden = false;
  showApp();  // with a token, or the session cookie of a signed-in browser; else the login form
})();
