// Notices beyond compose-and-approve: the preview of what a draft will send, one notice's page
// (who wrote it, approve or send back with a reason, live delivery progress per ward and per
// group) and the ward officer's forwards into personal groups. Broadcast decides who may do
// what; buttons only mirror it.
"use strict";

(() => {
  const C = window.Console;
  const { $, el, api } = C;
  const POLL_MS = 2000;
  let poll = null; // the open notice page's refresh timer
  let openId = null;

  // ---- preview while composing ----------------------------------------------------------

  function draftOf(form) {
    const draft = C.noticeDraft(form);
    const { targets } = draft;
    const none = !targets.all_groups && !targets.followers && !targets.wards.length && !targets.groups.length;
    if (none) targets.all_groups = true; // preview only
    return draft;
  }

  async function showPreview() {
    const form = $("notice-form");
    const result = $("notice-result");
    const draft = draftOf(form);
    if (!draft.title || !draft.body) {
      result.classList.add("error");
      result.textContent = "Hãy nhập tiêu đề và nội dung để xem trước.";
      return;
    }
    try {
      const shown = await api("broadcast", "/notices/preview", { method: "POST", body: draft });
      $("preview-group").textContent = shown.group_text;
      $("preview-title").textContent = shown.article.title;
      $("preview-author").textContent = shown.article.author;
      $("preview-body").textContent = shown.article.body;
      $("preview").hidden = false;
      result.textContent = "";
    } catch (exc) {
      result.classList.add("error");
      result.textContent = exc.message;
    }
  }

  // ---- one notice: decide, and follow its deliveries ----------------------------------

  function stopPolling() {
    if (poll) clearTimeout(poll);
    poll = null;
  }

  async function openNotice(hash) {
    stopPolling();
    openId = decodeURIComponent(hash.slice("#/notice/".length));
    $("nv-result").textContent = "";
    $("return-form").reset();
    $("nv-change").hidden = true;
    C.show("notice-view");
    await refresh(openId);
  }

  async function refresh(id) {
    if (id !== openId || !location.hash.startsWith("#/notice/")) return;
    try {
      const [view, groups] = await Promise.all([
        api("broadcast", `/notices/${encodeURIComponent(id)}`),
        api("broadcast", `/notices/${encodeURIComponent(id)}/groups`),
      ]);
      render(view.notice);
      renderProgress(view.progress, groups);
    } catch (exc) {
      $("nv-result").classList.add("error");
      $("nv-result").textContent = exc.message;
    }
    poll = setTimeout(() => refresh(id), POLL_MS);
  }

  function render(n) {
    const labels = C.NOTICE_LABELS;
    const mine = n.created_by === C.state.me.id;
    $("nv-title").textContent = n.title;
    $("nv-meta").textContent =
      `Mã ${n.verification_code} · ${labels.status[n.status] || n.status} · ` +
      `${labels.severity[n.severity]} · tạo lúc ${C.localTime(n.created_at)}` +
      (n.test_mode ? " · chế độ thử" : "");
    $("nv-people").textContent =
      `Người soạn: ${mine ? "bạn" : n.created_by_name || n.created_by}` +
      (n.approved_by ? ` · Người duyệt: ${n.approved_by_name || n.approved_by}` : "");
    $("nv-body").textContent = n.body;
    const returned = n.status === "returned";
    $("nv-returned").hidden = !returned;
    $("nv-returned").textContent = returned ? `Bị trả lại bởi ${n.returned_by_name || n.returned_by}. Lý do: ${n.return_reason}` : "";
    const pending = n.status === "pending_approval" && C.hasRole(["approver", "admin"]);
    $("nv-decide").hidden = !pending;
    $("nv-approve").disabled = mine;
    $("nv-approve-why").textContent = mine
      ? "Bạn là người soạn thông báo này: cần một người khác duyệt (quy tắc hai người)."
      : "Bạn là người thứ hai: duyệt để phát hành, hoặc trả lại kèm lý do.";
    $("return-form").hidden = mine;
    $("nv-original").hidden = !n.references;
    if (n.references) {
      $("nv-original-link").href = `#/notice/${encodeURIComponent(n.references)}`;
      $("nv-original-link").textContent = `${n.msg_type === "Cancel" ? "Thu hồi" : "Cập nhật"} của thông báo gốc`;
    }
    const changeable = n.status === "dispatched" && n.msg_type !== "Cancel" && C.hasRole(["editor", "approver", "admin"]);
    if (changeable && $("nv-change").hidden) {
      $("update-form").title.value = n.title; // prefilled once per opening: polling keeps edits
      $("update-form").body.value = n.body;
    }
    $("nv-change").hidden = !changeable;
  }

  const COLUMNS = ["sent", "awaiting_confirmation", "failed", "pending"];

  function renderProgress(progress, groups) {
    const counts = progress.counts;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const handled = total - (counts.pending || 0);
    const percent = total ? Math.floor((handled * 100) / total) : 0;
    $("nv-bar").value = percent;
    $("nv-progress").textContent = total
      ? `Đã xử lý ${handled}/${total} nhóm (${percent}%): đã gửi ${counts.sent || 0}, ` +
        `chờ cán bộ xác nhận ${counts.awaiting_confirmation || 0}, lỗi ${counts.failed || 0}` +
        (counts.cancelled ? `, đã hủy ${counts.cancelled}` : "") +
        "."
      : "Chưa có nhóm nào được lên kế hoạch gửi.";
    $("nv-wards").replaceChildren(
      ...Object.entries(progress.wards).map(([ward, byState]) =>
        el(
          "tr",
          {},
          el("th", { scope: "row", text: ward === "-" ? "Không thuộc phường/xã" : C.wardName(ward) }),
          ...COLUMNS.map((s) => el("td", { text: String(byState[s] || 0) })),
        ),
      ),
    );
    const stateText = {
      sent: "đã gửi",
      awaiting_confirmation: "chờ cán bộ chuyển tiếp",
      failed: "lỗi",
      pending: "đang chờ gửi",
      cancelled: "đã hủy",
    };
    $("nv-groups").replaceChildren(
      ...groups.map((g) => el("li", { text: `${g.group} · ${stateText[g.state] || g.state}` })),
    );
  }

  async function approve() {
    const button = $("nv-approve");
    button.disabled = true;
    try {
      await api("broadcast", `/notices/${encodeURIComponent(openId)}/approve`, { method: "POST" });
      $("nv-result").classList.remove("error");
      $("nv-result").textContent = "Đã duyệt: thông báo đang được gửi.";
    } catch (exc) {
      $("nv-result").classList.add("error");
      $("nv-result").textContent = exc.message;
      button.disabled = false;
    }
  }

  async function sendBack(event) {
    event.preventDefault();
    const form = event.target;
    const result = $("nv-result");
    result.classList.add("error");
    const reason = form.reason.value.trim();
    if (reason.length < 3) {
      result.textContent = "Hãy ghi lý do trả lại để người soạn biết cần sửa gì.";
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api("broadcast", `/notices/${encodeURIComponent(openId)}/return`, {
        method: "POST",
        body: { reason },
      });
      result.classList.remove("error");
      result.textContent = "Đã trả lại cho người soạn.";
      form.reset();
    } catch (exc) {
      result.textContent = exc.message; // the reason stays in the form: nothing is lost
    } finally {
      button.disabled = false;
    }
  }

  async function sendUpdate(event) {
    event.preventDefault();
    const form = event.target;
    const result = $("nv-result");
    result.classList.add("error");
    const title = form.title.value.trim();
    const body = form.body.value.trim();
    if (!title || !body) {
      result.textContent = "Bản cập nhật cần đầu đề và văn bản.";
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const made = await api("broadcast", `/notices/${encodeURIComponent(openId)}/update`, {
        method: "POST",
        body: { title, body },
      });
      location.hash = `#/notice/${encodeURIComponent(made.id)}`; // the update's own page
    } catch (exc) {
      result.textContent = exc.message;
    } finally {
      button.disabled = false;
    }
  }

  async function cancelNotice() {
    const button = $("nv-cancel");
    const result = $("nv-result");
    if (!button.dataset.armed) {
      // a second tap withdraws: one stray tap must not withdraw a notice
      button.dataset.armed = "1";
      button.textContent = "Bấm lần nữa để xác nhận thu hồi";
      return;
    }
    delete button.dataset.armed;
    button.textContent = "Thu hồi thông báo";
    button.disabled = true;
    try {
      const done = await api("broadcast", `/notices/${encodeURIComponent(openId)}/cancel`, { method: "POST" });
      result.classList.remove("error");
      result.textContent = done.withdrawal
        ? `Đã thu hồi; thông báo thu hồi mã ${done.withdrawal.verification_code} đang được gửi.`
        : "Đã thu hồi.";
    } catch (exc) {
      result.classList.add("error");
      result.textContent = exc.message;
    } finally {
      button.disabled = false;
    }
  }

  async function loadRecent() {
    let page;
    try {
      page = await api("broadcast", "/notices?page_size=20");
    } catch (exc) {
      return C.notice(exc.message);
    }
    const labels = C.NOTICE_LABELS.status;
    $("recent").replaceChildren(
      ...page.items.map((n) =>
        el(
          "li",
          {},
          el("a", { href: `#/notice/${encodeURIComponent(n.id)}`, text: n.title }),
          el("p", { class: "hint", text: `${labels[n.status] || n.status} · mã ${n.verification_code}` }),
        ),
      ),
    );
    $("recent-empty").hidden = page.items.length > 0;
  }

  // ---- the ward officer's forwards ------------------------------------------------------

  async function openForwards() {
    stopPolling();
    C.show("forwards-view");
    let rows;
    try {
      rows = await api("broadcast", "/forwards");
    } catch (exc) {
      $("forwards-result").textContent = exc.message;
      return;
    }
    $("forwards").replaceChildren(...rows.map(forwardRow));
    $("forwards-empty").hidden = rows.length > 0;
  }

  function forwardRow(item) {
    const text = el("pre", { class: "preview", text: item.text });
    const copy = el("button", { type: "button", class: "small secondary", text: "Sao chép nội dung" });
    const done = el("button", { type: "button", class: "small", text: "Đã chuyển tiếp" });
    const status = el("p", { class: "hint", role: "status" });
    const row = el(
      "li",
      { "data-delivery": item.delivery_id },
      el("strong", { text: item.title }),
      el("p", { class: "hint", text: `Nhóm: ${item.group}` }),
      text,
      el("div", { class: "buttons" }, copy, done),
      status,
    );
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(item.text);
        status.textContent = "Đã sao chép: dán vào nhóm Zalo.";
      } catch {
        getSelection().selectAllChildren(text); // no clipboard access: select it for a long press
        status.textContent = "Không sao chép tự động được: nội dung đã được bôi đen, hãy sao chép.";
      }
    });
    done.addEventListener("click", async () => {
      done.disabled = true;
      try {
        await api("broadcast", `/forwards/${encodeURIComponent(item.delivery_id)}/confirm`, { method: "POST" });
        row.remove();
        $("forwards-result").textContent = `Đã ghi nhận: nhóm «${item.group}» đã nhận thông báo.`;
        $("forwards-empty").hidden = $("forwards").children.length > 0;
      } catch (exc) {
        status.textContent = exc.message;
        done.disabled = false;
      }
    });
    return row;
  }

  // ---- pages ---------------------------------------------------------------------------

  const noticePage = {
    landing: "#/notices",
    allowed: () => C.hasRole(["editor", "approver", "admin"]),
    match: (hash) => hash.startsWith("#/notice/"),
    open: openNotice,
    entered() {},
  };
  const forwardsPage = {
    landing: "#/forwards",
    allowed: () => C.hasRole(["officer", "admin"]),
    match: (hash) => hash === "#/forwards",
    open: openForwards,
    entered() {
      $("nav-forwards").hidden = !forwardsPage.allowed();
    },
  };
  C.PAGES.push(noticePage, forwardsPage);
  window.addEventListener("hashchange", () => {
    if (!location.hash.startsWith("#/notice/")) stopPolling();
  });

  document.addEventListener("DOMContentLoaded", () => {
    $("preview-button").addEventListener("click", showPreview);
    // A preview of other text is no preview: it goes as soon as the draft changes or is sent.
    for (const event of ["input", "change", "reset"]) {
      $("notice-form").addEventListener(event, () => ($("preview").hidden = true));
    }
    $("nv-approve").addEventListener("click", approve);
    $("return-form").addEventListener("submit", sendBack);
    $("update-form").addEventListener("submit", sendUpdate);
    $("nv-cancel").addEventListener("click", cancelNotice);
    document.addEventListener("notices-shown", loadRecent);
    document.addEventListener("notices-shown", fillGroupWards);
    $("notice-group-ward").addEventListener("change", (event) => showGroupsOf(event.target.value));
    $("notice-form").addEventListener("change", countPicked);
    $("notice-form").addEventListener("reset", () => setTimeout(countPicked));
  });

  // ---- single groups as targets (a hamlet's group, not its whole ward) --------------------

  const pickedWards = new Set(); // wards whose groups are in the form already

  function countPicked() {
    const n = $("notice-form").querySelectorAll("input[name=groups]:checked").length;
    $("notice-groups-count").textContent = n ? `Đã chọn ${n} nhóm.` : "";
  }

  async function showGroupsOf(ward) {
    const box = $("notice-groups");
    for (const part of box.children) part.hidden = part.dataset.ward !== ward;
    if (!ward || pickedWards.has(ward)) return;
    pickedWards.add(ward);
    const part = el("div", { class: "checks", "data-ward": ward });
    box.append(part);
    let page;
    try {
      page = await api("broadcast", `/groups?ward=${encodeURIComponent(ward)}&page_size=500`);
    } catch (exc) {
      pickedWards.delete(ward); // choosing the ward again tries again
      part.remove();
      $("notice-result").textContent = exc.message;
      return;
    }
    const active = page.items.filter((g) => g.active);
    if (!active.length) part.append(el("p", { class: "hint", text: "Phường/xã này chưa có nhóm nào trong sổ." }));
    for (const g of active) {
      const how = g.channel === "manual" ? " (cán bộ chuyển tiếp)" : "";
      part.append(
        el("label", { class: "check" }, el("input", { type: "checkbox", name: "groups", value: g.group_id }), `${g.name}${how}`),
      );
    }
  }

  function fillGroupWards() {
    const select = $("notice-group-ward");
    if (select.options.length > 1) return;
    for (const [slug, name] of C.state.wards) select.append(el("option", { value: slug, text: name }));
  }
})();
