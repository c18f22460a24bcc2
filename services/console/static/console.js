// The staff console: sign-in through identity's session, the live queue and the case page.
// Everything that comes from outside (residents' text, names, codes) reaches the page through
// textContent or attribute setters, never innerHTML; the page's policy forbids inline script.
"use strict";

const LABELS = {
  priority: { urgent: "Khẩn cấp", high: "Cao", normal: "Bình thường", low: "Thấp" },
  status: {
    new: "Mới",
    assigned: "Đã phân công",
    verifying: "Đang xác minh",
    resolved: "Đã giải quyết",
    rejected: "Đã từ chối",
    duplicate: "Trùng (đã gộp)",
  },
  category: {
    theft: "Trộm cắp",
    robbery: "Cướp giật",
    drugs: "Ma túy",
    gambling: "Cờ bạc",
    fraud: "Lừa đảo",
    violence: "Bạo lực",
    domestic_violence: "Bạo lực gia đình",
    public_disorder: "Gây rối trật tự",
    traffic: "Giao thông",
    suspicious: "Đối tượng khả nghi",
    fire: "Cháy nổ",
    other: "Khác",
  },
  kind: { tip: "Tin báo", question: "Hỏi thủ tục", help: "Cần giúp đỡ", other: "Khác" },
  outcome: {
    verified_handled: "Đã xác minh, xử lý",
    referred: "Chuyển cơ quan khác",
    false_report: "Tin sai sự thật",
    no_evidence: "Không đủ căn cứ",
    answered: "Đã trả lời",
  },
  change: {
    created: "Tiếp nhận từ Zalo",
    changed: "Sửa phân loại",
    assigned: "Phân công",
    acknowledged: "Đã tiếp nhận",
    status_changed: "Đổi trạng thái",
    note_added: "Thêm ghi chú",
    replied: "Trả lời người dân",
    duplicate_suggested: "Gợi ý trùng",
    merged_from: "Gộp tin trùng",
    merged: "Đã gộp",
    retriaged: "Phân loại lại",
    rerouted: "Chuyển phường/xã",
    message_added: "Thêm tin nhắn",
  },
};
// Broadcast's CAP fields (services/broadcast/domain.py) in plain Vietnamese.
const NOTICE_LABELS = {
  category: {
    security_warning: "Cảnh báo an ninh, trật tự",
    fraud_warning: "Cảnh báo lừa đảo",
    procedure: "Hướng dẫn thủ tục",
    wanted_missing: "Truy tìm, tìm người mất tích",
    health_advisory: "Khuyến cáo sức khỏe",
    other: "Khác",
  },
  severity: {
    Extreme: "Đặc biệt nghiêm trọng",
    Severe: "Nghiêm trọng",
    Moderate: "Trung bình",
    Minor: "Nhẹ",
    Unknown: "Chưa rõ",
  },
  urgency: {
    Immediate: "Ngay lập tức",
    Expected: "Sắp xảy ra (trong vài giờ)",
    Future: "Trong thời gian tới",
    Past: "Đã qua",
    Unknown: "Chưa rõ",
  },
  certainty: {
    Observed: "Đã xảy ra, đã xác nhận",
    Likely: "Nhiều khả năng",
    Possible: "Có thể",
    Unlikely: "Ít khả năng",
    Unknown: "Chưa rõ",
  },
  status: {
    pending_approval: "Chờ duyệt",
    returned: "Bị trả lại",
    scheduled: "Đã lên lịch",
    ready: "Sẵn sàng gửi",
    dispatched: "Đã gửi đi",
    cancelled: "Đã hủy",
    expired: "Hết hạn",
  },
};
// The case workflow of reports (services/reports/cases.py TRANSITIONS); the service decides.
const NEXT_STATUS = {
  new: ["assigned", "verifying", "rejected"],
  assigned: ["verifying", "resolved", "rejected"],
  verifying: ["resolved", "rejected"],
};
const OPEN = new Set(["new", "assigned", "verifying"]);
const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2, low: 3 };
const WORKER_ROLES = ["dispatcher", "officer", "admin"];
const NOTICE_ROLES = ["editor", "approver", "admin"];

const state = {
  me: null,
  csrf: null,
  config: { urgent_ack_seconds: 300 },
  wards: new Map(),
  cases: new Map(),
  openCase: null,
  stream: null,
  streamBroken: false,
  ready: false, // enter() has loaded what every page needs (session, wards, queue)
  triageShown: null, // the case whose triage form was last filled
  noticeKey: null, // the idempotency key of the notice being submitted, kept until it is stored
};

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || messageFor(status));
    this.status = status;
    this.body = body;
  }
}

function messageFor(status) {
  if (status === 0) return "Mất kết nối mạng. Nội dung bạn nhập vẫn còn; hãy thử lại.";
  if (status === 401) return "Phiên đăng nhập đã hết. Vui lòng đăng nhập lại.";
  if (status === 403) return "Bạn không có quyền thực hiện thao tác này.";
  if (status >= 500) return "Hệ thống đang bận. Nội dung bạn nhập vẫn còn; hãy thử lại.";
  return "Yêu cầu không hợp lệ.";
}

function csrfToken() {
  if (state.csrf) return state.csrf;
  const match = document.cookie.match(/(?:^|;\s*)binhyen_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function api(service, path, { method = "GET", body, raw, extraHeaders = {} } = {}) {
  // `raw`: a body sent as it is (a CSV file), with its Content-Type in extraHeaders.
  const headers = { Accept: "application/json", ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  let response;
  try {
    response = await fetch(`/api/${service}${path}`, {
      method,
      headers,
      credentials: "same-origin",
      body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, null);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function show(viewId) {
  for (const view of document.querySelectorAll("main > section")) view.hidden = view.id !== viewId;
}

// Pages that other scripts add (admin.js, …): { allowed(), match(hash), open(hash), landing,
// entered() }; `allowed` reads the caller's roles, the services still decide.
const PAGES = [];

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

// ---- time ------------------------------------------------------------------------------

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} giây`;
  if (s < 3600) return `${Math.floor(s / 60)} phút`;
  if (s < 86400) return `${Math.floor(s / 3600)} giờ ${Math.floor((s % 3600) / 60)} phút`;
  return `${Math.floor(s / 86400)} ngày`;
}

function clock(seconds) {
  const s = Math.floor(Math.abs(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function localTime(iso) {
  return new Date(iso).toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" });
}

function slaDeadline(item) {
  if (item.priority !== "urgent" || item.acknowledged_at || !OPEN.has(item.status)) return null;
  return Date.parse(item.created_at) + state.config.urgent_ack_seconds * 1000;
}

// Written only when the words change: most rows say "n phút" or "n giờ" for a long while,
// and every write makes the browser lay the queue out again.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function tickTimes() {
  const now = Date.now();
  for (const node of document.querySelectorAll("[data-since]")) {
    setText(node, `nhận cách đây ${duration((now - Number(node.dataset.since)) / 1000)}`);
  }
  for (const node of document.querySelectorAll("[data-deadline]")) {
    const left = (Number(node.dataset.deadline) - now) / 1000;
    setText(node, left >= 0 ? `còn ${clock(left)} để tiếp nhận` : `quá hạn tiếp nhận ${clock(left)}`);
    if (node.classList.contains("overdue") !== left < 0) node.classList.toggle("overdue", left < 0);
  }
}

// ---- sign-in ---------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const error = $("sign-in-error");
  error.textContent = "";
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    error.textContent = "Hãy nhập tên đăng nhập và mật khẩu.";
    return;
  }
  const body = { username, password };
  if (form.code.value.trim()) body.code = form.code.value.trim();
  try {
    const done = await api("identity", "/auth/sign-in", { method: "POST", body });
    state.csrf = done.csrf_token;
    form.password.value = "";
    form.code.value = "";
    await enter();
  } catch (exc) {
    error.textContent = exc.message;
  }
}

async function signOut() {
  try {
    await api("identity", "/auth/sign-out", { method: "POST" });
  } catch (exc) {
    if (exc.status !== 401) return notice(exc.message);
  }
  if (state.stream) state.stream.close();
  state.me = state.csrf = state.stream = null;
  $("who").textContent = "";
  $("sign-out").hidden = true;
  show("sign-in-view");
}

async function enter() {
  state.ready = false;
  try {
    state.me = await api("identity", "/auth/session");
  } catch (exc) {
    if (exc.status === 401) return show("sign-in-view");
    return notice(exc.message);
  }
  state.csrf = state.me.csrf_token || state.csrf;
  $("who").textContent = state.me.name;
  $("sign-out").hidden = false;
  $("nav-queue").hidden = !hasRole(WORKER_ROLES);
  $("nav-notices").hidden = !hasRole(NOTICE_ROLES);
  for (const page of PAGES) page.entered();
  const pages = PAGES.filter((page) => page.allowed());
  if (!hasRole(WORKER_ROLES) && !hasRole(NOTICE_ROLES) && !pages.length) return show("no-role-view");
  await loadWards();
  if (hasRole(WORKER_ROLES)) {
    await loadQueue();
    openStream();
  }
  state.ready = true;
  route();
}

function hasRole(roles) {
  return Boolean(state.me) && state.me.roles.some((role) => roles.includes(role));
}

// ---- queue -----------------------------------------------------------------------------

async function loadWards() {
  const ward = $("filters").ward;
  const mine = state.me.wards || [];
  try {
    for (const item of await api("reports", "/wards")) {
      state.wards.set(item.slug, item.name);
      $("notice-wards").append(
        el("label", { class: "check" }, el("input", { type: "checkbox", name: "wards", value: item.slug }), item.name),
      );
      if (mine.length && !mine.includes(item.slug)) continue;
      ward.append(el("option", { value: item.slug, text: item.name }));
    }
  } catch (exc) {
    notice(exc.message);
  }
}

function wardName(slug) {
  return state.wards.get(slug) || (slug === "unknown" ? "Chưa rõ phường/xã" : slug);
}

function filters() {
  const form = $("filters");
  return { ward: form.ward.value, status: form.status.value, priority: form.priority.value };
}

function matches(item) {
  const f = filters();
  if (f.ward && item.ward !== f.ward) return false;
  if (f.status === "open" ? !OPEN.has(item.status) : f.status && item.status !== f.status) {
    return false;
  }
  if (f.priority && item.priority !== f.priority) return false;
  return hooks.queueMatch.every((ok) => ok(item));
}

// The queue reads every case the filters name, up to QUEUE_CAP, a page at a time: urgent on
// top must hold across all of them, and reports sorts by time only. It renders QUEUE_STEP
// rows at first and QUEUE_STEP more on request; rows are kept and moved, not rebuilt, so a
// new tip costs one row however long the queue (bench/console.py).
const QUEUE_PAGE = 1000; // reports' largest page: each request is a scan of the ward's cases
const QUEUE_CAP = 2000;
const QUEUE_STEP = 100;
const queue = { generation: 0, shown: QUEUE_STEP, total: 0, rows: new Map(), live: null };

async function loadQueue() {
  const f = filters();
  const params = new URLSearchParams({ limit: String(QUEUE_PAGE) });
  if (f.ward) params.set("ward", f.ward);
  if (f.status === "open") params.set("open", "true");
  else if (f.status) params.set("status", f.status);
  if (f.priority) params.set("priority", f.priority);
  for (const add of hooks.queueParams) add(params);
  const generation = ++queue.generation;
  queue.live = new Map(); // what the stream brings while the pages load is kept
  const page = (offset) => {
    params.set("offset", String(offset));
    return api("reports", `/cases?${params}`);
  };
  $("queue").dataset.loaded = "";
  try {
    const first = await page(0);
    if (generation !== queue.generation) return;
    queue.total = first.total;
    queue.shown = QUEUE_STEP;
    const offsets = [];
    for (let at = QUEUE_PAGE; at < Math.min(first.total, QUEUE_CAP); at += QUEUE_PAGE) offsets.push(at);
    const rest = await Promise.all(offsets.map(page));
    if (generation !== queue.generation) return;
    const items = [first, ...rest].flatMap((p) => p.items);
    state.cases = new Map(items.map((item) => [caseId(item), item]));
    for (const [id, item] of queue.live) state.cases.set(id, item);
    queue.live = null;
    $("queue").dataset.loaded = "all";
    renderQueue();
  } catch (exc) {
    if (generation === queue.generation) notice(exc.message);
  }
}

function caseId(item) {
  return item._id || item.id;
}

function firstText(item) {
  const message = (item.messages || []).find((m) => m.text);
  return message ? message.text : "(không có chữ)";
}

function queueRow(item) {
  const deadline = slaDeadline(item);
  const key = [item.updated_at, item.priority, item.status, item.category, item.ward, deadline].join("|");
  const kept = queue.rows.get(caseId(item));
  if (kept && kept.key === key) return kept.node;
  const link = el(
    "a",
    { href: `#/case/${encodeURIComponent(caseId(item))}`, class: "row" },
    el("span", { class: `badge ${item.priority}`, text: LABELS.priority[item.priority] }),
    el("strong", { class: "ref", text: item.ref }),
    el("span", { text: LABELS.category[item.category] || item.category }),
    el("span", { class: "ward", text: wardName(item.ward) }),
    el("span", { class: "status", text: LABELS.status[item.status] || item.status }),
    el("span", { class: "text", text: firstText(item) }),
    el("span", { class: "since", "data-since": String(Date.parse(item.created_at)) }),
    deadline === null ? null : el("span", { class: "sla", "data-deadline": String(deadline) }),
  );
  const node = el("li", { "data-case": caseId(item), class: item.priority }, link);
  if (kept) kept.node.replaceWith(node); // in place: the list below is then reordered
  queue.rows.set(caseId(item), { key, node });
  return node;
}

function renderQueue() {
  const created = new Map();
  const items = [...state.cases.values()].filter(matches);
  for (const item of items) created.set(item, Date.parse(item.created_at));
  items.sort(
    (a, b) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || created.get(b) - created.get(a),
  );
  const list = $("queue");
  const nodes = items.slice(0, queue.shown).map(queueRow); // changed rows replaced in place
  let cursor = list.firstElementChild;
  for (const node of nodes) {
    if (node === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(node, cursor);
  }
  while (cursor) {
    const next = cursor.nextElementSibling;
    cursor.remove();
    cursor = next;
  }
  for (const id of queue.rows.keys()) if (!state.cases.has(id)) queue.rows.delete(id);
  $("queue-empty").hidden = items.length > 0;
  const hidden = items.length - list.childElementCount;
  const older = Math.max(0, queue.total - QUEUE_CAP);
  $("queue-count").textContent =
    `Đang hiển thị ${list.childElementCount} / ${items.length} tin báo` +
    (older ? `; còn ${older} tin cũ hơn, hãy thu hẹp bộ lọc (thời gian, nhóm vụ việc).` : ".");
  $("queue-more").hidden = hidden <= 0;
  $("queue-more").textContent = `Hiển thị thêm ${Math.min(QUEUE_STEP, hidden)} tin báo`;
  tickTimes();
}

function showMoreRows() {
  queue.shown += QUEUE_STEP;
  renderQueue();
}

// ---- live stream -----------------------------------------------------------------------

function openStream() {
  if (state.stream) state.stream.close();
  const source = new EventSource("/api/reports/cases/stream");
  state.stream = source;
  source.addEventListener("open", () => {
    $("live-state").textContent = "Đang cập nhật trực tiếp.";
    if (state.streamBroken) {
      // What changed while the connection was down: read the queue again.
      state.streamBroken = false;
      loadQueue();
      if (state.openCase) refreshCase(state.openCase);
    }
  });
  source.addEventListener("error", () => {
    state.streamBroken = true;
    $("live-state").textContent = "Mất kết nối trực tiếp, đang kết nối lại…";
  });
  for (const type of ["tip.triaged", "tip.updated", "tip.escalated"]) {
    source.addEventListener(type, (event) => onCaseEvent(JSON.parse(event.data)));
  }
}

async function onCaseEvent(event) {
  if (event.info_only) return;
  let item;
  try {
    item = await api("reports", `/cases/${encodeURIComponent(event.case_id)}`);
  } catch (exc) {
    if (exc.status === 403 || exc.status === 404) {
      // No longer visible to this person (moved to another ward): off the queue.
      state.cases.delete(event.case_id);
      renderQueue();
    }
    return;
  }
  if (event.type === "tip.triaged" && item.priority === "urgent") alertUrgent(item);
  state.cases.set(caseId(item), item);
  if (queue.live) queue.live.set(caseId(item), item);
  renderQueue();
  if (state.openCase === caseId(item)) renderCase(item);
}

// ---- urgent alerts: a sound and a browser notification -----------------------------------

const alerts = { audio: null };

function enableAlerts() {
  // Both need a person's gesture: the browser refuses sound and permission prompts otherwise.
  alerts.audio = alerts.audio || new AudioContext();
  alerts.audio.resume();
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().then(showAlertsState);
  }
  showAlertsState();
}

function showAlertsState() {
  const denied = "Notification" in window && Notification.permission === "denied";
  $("alerts").textContent = !alerts.audio
    ? "Bật chuông và thông báo khi có tin khẩn"
    : denied
      ? "Chuông đã bật (trình duyệt chặn thông báo)"
      : "Chuông và thông báo đã bật";
}

function beep() {
  const context = alerts.audio;
  const tone = context.createOscillator();
  const gain = context.createGain();
  tone.frequency.value = 880;
  gain.gain.setValueAtTime(0.2, context.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, context.currentTime + 0.6);
  tone.connect(gain).connect(context.destination);
  tone.start();
  tone.stop(context.currentTime + 0.6);
}

function alertUrgent(item) {
  if (alerts.audio) beep();
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  // A notification can show on a locked screen: the code, category and ward, never the
  // resident's words.
  const shown = new Notification(`Tin báo khẩn ${item.ref}`, {
    body: `${LABELS.category[item.category] || item.category} · ${wardName(item.ward)}`,
    tag: caseId(item),
  });
  shown.addEventListener("click", () => {
    window.focus();
    location.hash = `#/case/${encodeURIComponent(caseId(item))}`;
  });
}

// ---- case page -------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/case\/(.+)$/);
  // A link followed while enter() still loads waits for it (enter ends by routing to the
  // address then current): a page opened twice clears its own messages and lists under the
  // person's hands, and one opened before the wards arrive has empty ward choices.
  if (!state.me || !state.ready) return;
  const page = PAGES.find((p) => p.allowed() && p.match(location.hash));
  if (page) {
    state.openCase = null;
    page.open(location.hash);
  } else if (location.hash === "#/notices" && hasRole(NOTICE_ROLES)) {
    state.openCase = null;
    show("notices-view");
    loadApprovals();
    document.dispatchEvent(new Event("notices-shown")); // notices.js lists recent notices
  } else if (!hasRole(WORKER_ROLES)) {
    const other = PAGES.find((p) => p.allowed());
    location.hash = hasRole(NOTICE_ROLES) || !other ? "#/notices" : other.landing;
  } else if (match) {
    state.openCase = decodeURIComponent(match[1]);
    state.triageShown = null;
    $("action-result").textContent = "";
    for (const form of ["note-form", "reply-form"]) $(form).reset();
    show("case-view");
    refreshCase(state.openCase);
  } else {
    state.openCase = null;
    show("queue-view");
  }
}

async function refreshCase(id) {
  try {
    const item = await api("reports", `/cases/${encodeURIComponent(id)}`);
    state.cases.set(caseId(item), item);
    if (state.openCase === id) renderCase(item);
  } catch (exc) {
    $("case-details").replaceChildren(el("p", { class: "error", text: exc.message }));
  }
}

function section(title, ...children) {
  return el("section", { class: "card" }, el("h2", { text: title }), ...children);
}

function mapLink(latitude, longitude) {
  const url =
    `https://www.openstreetmap.org/?mlat=${latitude}&mlon=${longitude}` +
    `#map=18/${latitude}/${longitude}`;
  return el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "Mở bản đồ" });
}

function messageItem(message) {
  const item = el(
    "li",
    {},
    el("time", { text: localTime(message.at) }),
    el("p", { class: "said", text: message.text || "(không có chữ)" }),
  );
  if (message.photos && message.photos.length) item.append(Console.photos(message.photos));
  if (message.latitude !== null && message.longitude !== null) {
    const where = `Vị trí: ${message.latitude.toFixed(5)}, ${message.longitude.toFixed(5)} — `;
    item.append(el("p", { class: "where", text: where }, mapLink(message.latitude, message.longitude)));
  }
  return item;
}

function renderCase(item) {
  const deadline = slaDeadline(item);
  const facts = el(
    "dl",
    { class: "facts" },
    el("dt", { text: "Mức ưu tiên" }),
    el("dd", {}, el("span", { class: `badge ${item.priority}`, text: LABELS.priority[item.priority] })),
    el("dt", { text: "Loại" }),
    el("dd", { text: `${LABELS.kind[item.kind] || item.kind} · ${LABELS.category[item.category] || item.category}` }),
    el("dt", { text: "Phường/xã" }),
    el("dd", { text: wardName(item.ward) }),
    el("dt", { text: "Trạng thái" }),
    el("dd", { class: "status", text: caseStatusText(item) }),
    el("dt", { text: "Nhận lúc" }),
    el("dd", {}, el("span", { text: `${localTime(item.created_at)} · ` }), el("span", { "data-since": String(Date.parse(item.created_at)) })),
    el("dt", { text: "Tiếp nhận" }),
    el("dd", { class: "acked", text: item.acknowledged_at ? localTime(item.acknowledged_at) : "chưa tiếp nhận" }),
  );
  if (deadline !== null) facts.append(el("dt", { text: "Hạn tiếp nhận" }), el("dd", { class: "sla", "data-deadline": String(deadline) }));
  const parts = [
    el("h1", { text: `Tin báo ${item.ref}` }),
    facts,
    section("Tin nhắn của người dân", el("ol", { class: "messages" }, ...(item.messages || []).map(messageItem))),
    section(
      "Lý do phân loại",
      el("ul", {}, ...(item.reasons || []).map((r) => el("li", { text: Console.reasonText(r) }))),
    ),
  ];
  if (item.duplicate_of) {
    parts.push(section("Có thể trùng với", el("a", { href: `#/case/${encodeURIComponent(item.duplicate_of)}`, text: "tin báo gốc" })));
  }
  if ((item.notes || []).length) {
    parts.push(section("Ghi chú và trả lời", el("ol", {}, ...item.notes.map((n) => el("li", {}, el("time", { text: localTime(n.at) }), el("p", { class: "said", text: n.text }))))));
  }
  parts.push(
    section(
      "Lịch sử",
      el("ol", { class: "history" }, ...(item.history || []).map((h) =>
        el("li", { text: Console.historyText(h) }),
      )),
    ),
  );
  $("case-details").replaceChildren(...parts);
  renderActions(item);
  for (const extend of hooks.caseRendered) extend(item);
  tickTimes();
}

function caseStatusText(item) {
  const status = LABELS.status[item.status] || item.status;
  return item.outcome ? `${status} — ${LABELS.outcome[item.outcome] || item.outcome}` : status;
}

function renderActions(item) {
  const open = OPEN.has(item.status);
  $("ack").hidden = Boolean(item.acknowledged_at) || !open;
  const to = $("transition-form").to;
  const chosen = to.value;
  to.replaceChildren(...(NEXT_STATUS[item.status] || []).map((s) => el("option", { value: s, text: LABELS.status[s] })));
  if ([...to.options].some((o) => o.value === chosen)) to.value = chosen;
  $("transition-form").hidden = !open;
  const triage = $("triage-form");
  triage.hidden = !open;
  if (state.triageShown !== caseId(item)) {
    // Set once per case opened, so a live update does not undo a choice being made.
    state.triageShown = caseId(item);
    for (const field of ["kind", "category", "priority"]) triage[field].value = item[field];
  }
}

async function act(button, run, success) {
  const result = $("action-result");
  button.disabled = true;
  result.textContent = "Đang gửi…";
  result.classList.remove("error");
  try {
    const item = await run();
    state.cases.set(caseId(item), item);
    renderCase(item);
    result.textContent = success;
    return true;
  } catch (exc) {
    result.textContent = exc.message;
    result.classList.add("error");
    return false;
  } finally {
    button.disabled = false;
  }
}

function caseUrl(suffix) {
  return `/cases/${encodeURIComponent(state.openCase)}${suffix}`;
}

function bindActions() {
  $("ack").addEventListener("click", (event) =>
    act(event.target, () => api("reports", caseUrl("/ack"), { method: "POST" }), "Đã tiếp nhận tin báo."),
  );
  $("transition-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { to: form.to.value };
    if (body.to === "resolved") {
      if (!form.outcome.value) {
        $("action-result").textContent = "Hãy chọn kết quả khi kết thúc tin báo.";
        return;
      }
      body.outcome = form.outcome.value;
    }
    act(form.querySelector("button"), () => api("reports", caseUrl("/transitions"), { method: "POST", body }), "Đã cập nhật trạng thái.");
  });
  $("triage-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const item = state.cases.get(state.openCase);
    const body = {};
    for (const field of ["kind", "category", "priority"]) {
      if (!item || form[field].value !== item[field]) body[field] = form[field].value;
    }
    if (!Object.keys(body).length) {
      $("action-result").textContent = "Phân loại không thay đổi.";
      return;
    }
    act(form.querySelector("button"), () => api("reports", caseUrl(""), { method: "PATCH", body }), "Đã lưu phân loại.");
  });
  for (const [formId, suffix, success] of [
    ["note-form", "/notes", "Đã thêm ghi chú."],
    ["reply-form", "/reply", "Đã gửi trả lời qua Zalo."],
  ]) {
    $(formId).addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const text = form.text.value.trim();
      if (!text) {
        $("action-result").textContent = "Nội dung không được để trống.";
        return;
      }
      const sent = await act(form.querySelector("button"), () => api("reports", caseUrl(suffix), { method: "POST", body: { text } }), success);
      if (sent) form.reset(); // kept when sending failed, so nothing typed is lost
    });
  }
}

// ---- notices: compose and approve ------------------------------------------------------

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs HTTPS
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function vietnamTime(local) {
  // <input type=datetime-local> gives wall-clock time; Đồng Hới is UTC+7 all year.
  return local ? `${local}:00+07:00` : null;
}

// Who the composed notice reaches: every group, wards, single groups (ticked under any ward
// shown in the picker: a ward's list stays in the form when another ward is shown) and followers.
function noticeTargets(form) {
  const ticked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
  return {
    all_groups: form.all_groups.checked,
    followers: form.followers.checked,
    wards: ticked("wards"),
    groups: ticked("groups"),
  };
}

// The notice the compose form describes, as broadcast's NoticeDraft (sent, or previewed).
function noticeDraft(form) {
  const draft = {
    title: form.title.value.trim(),
    body: form.body.value.trim(),
    category: form.category.value,
    severity: form.severity.value,
    urgency: form.urgency.value,
    certainty: form.certainty.value,
    targets: noticeTargets(form),
    test_mode: form.test_mode.checked,
  };
  if (form.expires_at.value) draft.expires_at = vietnamTime(form.expires_at.value);
  return draft;
}

async function submitNotice(event) {
  event.preventDefault();
  const form = event.target;
  const result = $("notice-result");
  result.classList.add("error");
  const targets = noticeTargets(form);
  const problems = [];
  if (!form.title.value.trim()) problems.push("tiêu đề");
  if (!form.body.value.trim()) problems.push("nội dung");
  if (!targets.all_groups && !targets.followers && !targets.wards.length && !targets.groups.length) {
    problems.push("nơi nhận");
  }
  if (problems.length) {
    result.textContent = `Còn thiếu: ${problems.join(", ")}.`;
    return;
  }
  const body = noticeDraft(form);
  // One key per notice: sending again after a network failure cannot make a second notice.
  state.noticeKey = state.noticeKey || randomKey();
  const button = form.querySelector("button");
  button.disabled = true;
  result.textContent = "Đang gửi…";
  try {
    const notice = await api("broadcast", "/notices", {
      method: "POST",
      body,
      extraHeaders: { "Idempotency-Key": state.noticeKey },
    });
    state.noticeKey = null;
    form.reset();
    result.classList.remove("error");
    result.textContent =
      notice.status === "pending_approval"
        ? `Đã lưu thông báo ${notice.verification_code}: đang chờ một người khác duyệt.`
        : `Đã lưu thông báo ${notice.verification_code}: ${NOTICE_LABELS.status[notice.status] || notice.status}.`;
    loadApprovals();
  } catch (exc) {
    const fields = ((exc.body && exc.body.errors) || []).map((e) => e.msg).join(" ");
    result.textContent = fields ? `${exc.message} ${fields}` : exc.message;
  } finally {
    button.disabled = false;
  }
}

function targetText(targets) {
  const parts = [];
  if (targets.all_groups) parts.push("tất cả các nhóm");
  if (targets.followers) parts.push("người quan tâm OA");
  if (targets.wards.length) parts.push(targets.wards.map(wardName).join(", "));
  if (targets.groups.length) parts.push(`${targets.groups.length} nhóm`);
  return parts.join("; ");
}

async function loadApprovals() {
  let page;
  try {
    page = await api("broadcast", "/notices?status=pending_approval&page_size=50");
  } catch (exc) {
    return notice(exc.message);
  }
  const rows = page.items.map((item) => {
    const mine = item.created_by === state.me.id;
    const row = el(
      "li",
      { "data-notice": item.id },
      el("a", { href: `#/notice/${encodeURIComponent(item.id)}` }, el("strong", { text: item.title })),
      el("p", { class: "said", text: item.body }),
      el("p", {
        class: "hint",
        text:
          `${NOTICE_LABELS.category[item.category] || item.category} · ` +
          `${NOTICE_LABELS.severity[item.severity]} · ${NOTICE_LABELS.urgency[item.urgency]} · ` +
          `${NOTICE_LABELS.certainty[item.certainty]} · gửi đến ${targetText(item.targets)}` +
          (item.test_mode ? " · chế độ thử" : ""),
      }),
      el("p", {
        class: "two-person",
        text: mine
          ? "Bạn là người soạn: cần một người khác duyệt."
          : `Người soạn: ${item.created_by_name || item.created_by}. Bạn là người thứ hai.`,
      }),
    );
    if (hasRole(["approver"]) && !mine) {
      const approve = el("button", { type: "button", text: "Duyệt và phát hành" });
      approve.addEventListener("click", () => approveNotice(item.id, approve));
      row.append(approve);
    }
    return row;
  });
  $("approvals").replaceChildren(...rows);
  $("approvals-empty").hidden = rows.length > 0;
}

async function approveNotice(id, button) {
  button.disabled = true;
  try {
    await api("broadcast", `/notices/${encodeURIComponent(id)}/approve`, { method: "POST" });
    await loadApprovals();
    notice("");
  } catch (exc) {
    notice(exc.message);
    button.disabled = false;
  }
}

// ---- start -----------------------------------------------------------------------------

function fillSelect(select, labels, chosen = null) {
  for (const [value, text] of Object.entries(labels)) {
    const option = el("option", { value, text });
    option.defaultSelected = value === chosen; // what form.reset() comes back to
    select.append(option);
  }
}

// A new notice starts from the middle of each scale, never from "extreme" or "immediate".
const NOTICE_DEFAULTS = { category: "security_warning", severity: "Moderate", urgency: "Expected", certainty: "Likely" };

async function start() {
  fillSelect($("filters").priority, LABELS.priority);
  fillSelect($("filters").status, LABELS.status);
  fillSelect($("transition-form").outcome, LABELS.outcome);
  for (const field of ["kind", "category", "priority"]) fillSelect($("triage-form")[field], LABELS[field]);
  for (const field of ["category", "severity", "urgency", "certainty"]) {
    fillSelect($("notice-form")[field], NOTICE_LABELS[field], NOTICE_DEFAULTS[field]);
  }
  $("notice-form").addEventListener("submit", submitNotice);
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("alerts").addEventListener("click", enableAlerts);
  $("filters").addEventListener("change", loadQueue);
  $("queue-more").addEventListener("click", showMoreRows);
  window.addEventListener("hashchange", route);
  bindActions();
  setInterval(tickTimes, 1000);
  try {
    state.config = await (await fetch("/config.json")).json();
  } catch {
    // the default countdown is reports' default
  }
  await enter();
}

// What the other scripts (admin.js, dispatch.js, notices.js, ...) use and extend, rather than copies of
// it; they load after this one.
const hooks = { queueParams: [], queueMatch: [], caseRendered: [] };
const Console = {
  $,
  el,
  show,
  fillSelect,
  randomKey,
  PAGES,
  api,
  state,
  hooks,
  LABELS,
  NOTICE_LABELS,
  noticeTargets,
  noticeDraft,
  section,
  act,
  caseId,
  caseUrl,
  wardName,
  localTime,
  hasRole,
  notice,
  loadQueue,
  renderQueue,
  renderCase,
  photos: (photos) => el("p", { text: `Kèm ${photos.length} ảnh` }),
  reasonText: (reason) => `${reason.rule}: ${reason.term}`,
  historyText: (h) =>
    `${localTime(h.at)} · ${LABELS.change[h.change] || h.change}${h.detail ? ` (${LABELS.outcome[h.detail] || LABELS.status[h.detail] || h.detail})` : ""}`,
};
window.Console = Console;

document.addEventListener("DOMContentLoaded", start);
