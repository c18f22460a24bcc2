// The dispatcher's and ward officer's tools beyond the first slice (issue 17): the queue's
// category and time filters, and on the case page: assign, merge a suggested duplicate, move
// to another ward, the resident's photos, and triage reasons in plain Vietnamese. Uses the
// helpers console.js exposes (window.Console); everything from outside goes through el().
"use strict";

(() => {
  const C = window.Console;
  const { el, api, state, LABELS } = C;
  const $ = (id) => document.getElementById(id);
  const OPEN = new Set(["new", "assigned", "verifying"]);
  const VIETNAM_OFFSET_MS = 7 * 3600 * 1000; // Đồng Hới is UTC+7 all year

  // ---- queue filters: category and time -------------------------------------------------

  const SINCE_SECONDS = { "1h": 3600, "24h": 86400, "7d": 7 * 86400 };

  /** The earliest creation time (ms) the time filter keeps, or null for "any time". */
  function sinceMs(choice, now = Date.now()) {
    if (!choice) return null;
    if (choice === "today") {
      const local = now + VIETNAM_OFFSET_MS;
      return local - (local % 86400000) - VIETNAM_OFFSET_MS;
    }
    return now - SINCE_SECONDS[choice] * 1000;
  }

  const filterForm = $("filters");
  for (const [value, text] of Object.entries(LABELS.category)) {
    filterForm.category.append(el("option", { value, text }));
  }
  C.hooks.queueParams.push((params) => {
    if (filterForm.category.value) params.set("category", filterForm.category.value);
    const since = sinceMs(filterForm.since.value);
    if (since !== null) params.set("since", new Date(since).toISOString());
  });
  C.hooks.queueMatch.push((item) => {
    if (filterForm.category.value && item.category !== filterForm.category.value) return false;
    const since = sinceMs(filterForm.since.value);
    return since === null || Date.parse(item.created_at) >= since;
  });

  // ---- triage reasons in plain Vietnamese ---------------------------------------------------

  // The rules of services/reports/rules/safety.yaml that make a tip urgent.
  const SAFETY = {
    weapon_now: "có hung khí, đang xảy ra",
    violence_now: "bạo lực đang xảy ra",
    fight: "đang đánh nhau",
    injury: "có người bị thương",
    child_at_risk: "trẻ em đang gặp nguy hiểm",
    missing_person: "trẻ em hoặc người già mất tích",
    intruder_inside: "người lạ đột nhập vào nhà",
    fire: "đang cháy",
    money_transfer: "đang bị dụ chuyển tiền",
    scam_call_now: "đang nghe cuộc gọi lừa đảo",
    suicide_threat: "có ý định tự tử",
  };
  const ATTACHMENT = {
    image: "ảnh",
    gif: "ảnh động",
    sticker: "nhãn dán",
    link: "đường dẫn",
    audio: "tin nhắn thoại",
    video: "video",
    file: "tệp",
    location: "vị trí",
    business_card: "danh thiếp",
  };
  const REVIEW_LABELS = { ...LABELS.kind, ...LABELS.category };

  /** `tip 0.48 · question 0.41` (reports' decision.top_choices) → `Tin báo 48% · Hỏi thủ tục 41%`. */
  function choicesText(term) {
    return term
      .split(" · ")
      .map((part) => {
        const [label, p] = part.split(" ");
        const percent = Number.isFinite(Number(p)) ? ` ${Math.round(Number(p) * 100)}%` : "";
        return `${REVIEW_LABELS[label] || label}${percent}`;
      })
      .join(" · ");
  }

  /** One reason code of reports' triage (services/reports/triage.py, intake_core.py,
   * safety.py) as a sentence a dispatcher reads. */
  function reasonText(reason) {
    const { rule, term } = reason;
    const words = `“${term}”`;
    if (rule.startsWith("safety.")) {
      const what = SAFETY[rule.slice(7)] || "tình huống nguy hiểm";
      return `Khẩn cấp theo quy tắc an toàn: ${what} (từ ${words})`;
    }
    switch (rule) {
      case "model.kind":
        return `Loại tin: mô hình dựa vào cụm từ ${words}`;
      case "model.category":
        return `Nhóm vụ việc: mô hình dựa vào cụm từ ${words}`;
      case "model.priority":
        return `Mức khẩn cấp: mô hình dựa vào cụm từ ${words}`;
      case "model.review":
        return `Cần người xem lại: mô hình chưa chắc chắn (${choicesText(term)})`;
      case "kind.attachment":
        return `Tin chỉ có ${ATTACHMENT[term] || "tệp đính kèm"}, chưa có lời kể`;
      case "ward.group":
        return `Phường/xã: theo nhóm Zalo của ${C.wardName(term)}`;
      case "ward.unit":
        return `Phường/xã: tin nhắn nêu tên ${words}`;
      case "ward.former_unit":
        return `Phường/xã: tin nhắn nêu tên đơn vị cũ ${words} (trước khi sáp nhập)`;
      case "ward.place":
        return `Phường/xã: tin nhắn nêu địa danh ${words}`;
      case "ward.location":
        return `Phường/xã: theo vị trí người dân chia sẻ, gần ${term}`;
      default:
        return `Quy tắc khác: ${term}`;
    }
  }
  C.reasonText = reasonText;

  // ---- photos ------------------------------------------------------------------------------

  /** Only Zalo's CDN over HTTPS: the page's img-src allows nothing else (pages.py). */
  function isZaloPhoto(url) {
    try {
      const parsed = new URL(url);
      return parsed.protocol === "https:" && parsed.hostname.endsWith(".zdn.vn");
    } catch {
      return false;
    }
  }

  C.photos = (urls) => {
    const list = el("ul", { class: "photos" });
    urls.forEach((url, index) => {
      const alt = `Ảnh người dân gửi (${index + 1}/${urls.length})`;
      if (!isZaloPhoto(url)) {
        list.append(el("li", { class: "photo-missing", text: `${alt}: địa chỉ ảnh không phải của Zalo, không hiển thị.` }));
        return;
      }
      const img = el("img", { src: url, alt, loading: "lazy", referrerpolicy: "no-referrer", class: "photo" });
      const link = el("a", { href: url, target: "_blank", rel: "noopener noreferrer", title: "Mở ảnh cỡ lớn" }, img);
      img.addEventListener(
        "error",
        () => link.replaceWith(el("span", { class: "photo-missing", text: `${alt}: không tải được ảnh (có thể đã hết hạn trên Zalo).` })),
        { once: true },
      );
      list.append(el("li", {}, link));
    });
    return list;
  };

  // ---- history in plain Vietnamese ---------------------------------------------------------

  // Reports writes a change's fields as Python would print them: `status=assigned,
  // outcome=None, assignee=u-7` (services/reports/desk.py); each becomes words, None is left out.
  const FIELDS = {
    status: ["trạng thái", (v) => LABELS.status[v] || v],
    outcome: ["kết quả", (v) => LABELS.outcome[v] || v],
    assignee: ["người xử lý", (v) => personName(v)],
    merged_into: ["gộp vào", () => "tin báo gốc"],
    kind: ["loại tin", (v) => LABELS.kind[v] || v],
    category: ["nhóm vụ việc", (v) => LABELS.category[v] || v],
    priority: ["mức ưu tiên", (v) => LABELS.priority[v] || v],
    ward: ["phường/xã", (v) => C.wardName(v)],
    info_wards: ["báo cho", (v) => v.replace(/[[\]' ]/g, "").split(",").filter(Boolean).map(C.wardName).join(", ")],
  };

  function detailText(h, shownStatus) {
    const detail = h.detail || "";
    if (!detail) return "";
    if (h.change === "assigned") return `người xử lý: ${personName(detail)}`; // the roster's
    if (h.change === "merged_from") return `tin báo ${detail}`;
    if (h.change === "duplicate_suggested") {
      const [ref, score] = detail.split(" ");
      const share = Number((score || "").replace(/[()]/g, ""));
      return Number.isFinite(share) && score ? `giống tin báo ${ref} ${Math.round(share * 100)}%` : detail;
    }
    if (!/^[a-z_]+=/.test(detail)) return LABELS.outcome[detail] || LABELS.status[detail] || detail;
    return detail
      .split(/, (?=[a-z_]+=)/)
      .map((pair) => pair.split("="))
      .filter(([key, value]) => FIELDS[key] && value !== "None" && !(key === "status" && shownStatus))
      .map(([key, value]) => `${FIELDS[key][0]}: ${FIELDS[key][1](value)}`)
      .join("; ");
  }

  C.historyText = (h) => {
    const status = h.change.startsWith("status:") ? h.change.slice(7) : null;
    const what = status
      ? `Chuyển trạng thái: ${LABELS.status[status] || status}`
      : LABELS.change[h.change] || "Thay đổi khác";
    const detail = detailText(h, status);
    return `${C.localTime(h.at)} · ${what}${detail ? ` (${detail})` : ""}`;
  };

  // ---- case actions: assign, merge, move ----------------------------------------------------

  const cache = { people: undefined, originals: new Map(), shown: null };

  /** Staff who may be given a case of `ward`, if this person may read identity's accounts
   * (admins); otherwise null and the page offers "nhận xử lý" (to oneself) only. */
  async function assignable(ward) {
    if (cache.people === undefined) {
      try {
        const page = await api("identity", "/accounts?limit=500");
        cache.people = page.items.filter(
          (p) => p.active && p.roles.some((r) => r === "dispatcher" || r === "officer"),
        );
      } catch {
        cache.people = null; // not theirs to read: identity decides
      }
    }
    if (cache.people === null) return null;
    return cache.people.filter((p) => !p.wards.length || p.wards.includes(ward));
  }

  function personName(id) {
    if (!id) return "chưa phân công";
    if (state.me && id === state.me.id) return `bạn (${state.me.name})`;
    const known = (cache.people || []).find((p) => p.id === id);
    return known ? known.name : `cán bộ mã ${id}`;
  }

  function result(text, isError) {
    const node = $("action-result");
    node.textContent = text;
    node.classList.toggle("error", Boolean(isError));
  }

  function transition(body, success) {
    return (button) => C.act(button, () => api("reports", C.caseUrl("/transitions"), { method: "POST", body }), success);
  }

  function assignCard(item) {
    const card = el(
      "form",
      { id: "assign-form", class: "card", novalidate: "" },
      el("h2", { text: "Phân công" }),
      el("p", { class: "assignee", text: `Người xử lý: ${personName(item.assignee)}` }),
    );
    if (item.status !== "new") return card; // reports assigns from "mới" only
    const mine = el("button", { type: "button", text: "Nhận xử lý" });
    mine.addEventListener("click", () => transition({ to: "assigned", assignee: state.me.id }, "Bạn đã nhận xử lý tin báo.")(mine));
    card.append(mine);
    assignable(item.ward).then((people) => {
      if (!people || !people.length || !card.isConnected) return;
      const select = el("select", { name: "assignee" }, el("option", { value: "", text: "— Chọn cán bộ —" }));
      for (const p of people) select.append(el("option", { value: p.id, text: p.name }));
      const give = el("button", { type: "submit", text: "Phân công" });
      card.insertBefore(el("label", {}, "Giao cho cán bộ của phường/xã", select), mine);
      card.insertBefore(give, mine);
      card.addEventListener("submit", (event) => {
        event.preventDefault();
        if (!select.value) return result("Hãy chọn cán bộ để phân công.", true);
        transition({ to: "assigned", assignee: select.value }, "Đã phân công tin báo.")(give);
      });
    });
    return card;
  }

  async function original(id) {
    if (!cache.originals.has(id)) {
      try {
        cache.originals.set(id, await api("reports", `/cases/${encodeURIComponent(id)}`));
      } catch (exc) {
        return { error: exc.message };
      }
    }
    return cache.originals.get(id);
  }

  function caseLink(id, text) {
    return el("a", { href: `#/case/${encodeURIComponent(id)}`, text });
  }

  function mergeCard(item) {
    if (item.merged_into) {
      return el("div", { class: "card merged" }, el("h2", { text: "Đã gộp" }), el("p", {}, "Tin báo này đã được gộp vào ", caseLink(item.merged_into, "tin báo gốc"), "."));
    }
    if (!item.duplicate_of || !OPEN.has(item.status)) return null;
    const about = el("p", { class: "merge-about", text: "Đang tải tin báo gốc…" });
    const confirm = el("input", { type: "checkbox", name: "confirm" });
    const button = el("button", { type: "submit", text: "Gộp vào tin báo gốc" });
    const form = el(
      "form",
      { id: "merge-form", class: "card", novalidate: "" },
      el("h2", { text: "Gộp tin trùng" }),
      about,
      el("label", { class: "check" }, confirm, "Tôi đã đọc cả hai tin báo: đây là cùng một vụ việc."),
      button,
    );
    original(item.duplicate_of).then((first) => {
      if (first.error) {
        about.textContent = `Không đọc được tin báo gốc: ${first.error}`;
        return;
      }
      const text = ((first.messages || []).find((m) => m.text) || {}).text || "(không có chữ)";
      about.replaceChildren(
        "Có thể trùng với ",
        caseLink(first.id || first._id, `tin báo ${first.ref}`),
        ` (${LABELS.status[first.status] || first.status}, ${C.wardName(first.ward)}): `,
        el("q", { class: "said", text: text.length > 160 ? `${text.slice(0, 160)}…` : text }),
      );
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!confirm.checked) return result("Hãy xác nhận đã đọc cả hai tin báo trước khi gộp.", true);
      cache.originals.delete(item.duplicate_of);
      transition({ to: "duplicate", merged_into: item.duplicate_of }, "Đã gộp vào tin báo gốc.")(button);
    });
    return form;
  }

  function moveCard(item) {
    if (!OPEN.has(item.status)) return null;
    const select = el("select", { name: "ward" }, el("option", { value: "", text: "— Chọn phường/xã —" }));
    for (const [slug, name] of state.wards) if (slug !== item.ward) select.append(el("option", { value: slug, text: name }));
    const button = el("button", { type: "submit", text: "Chuyển phường/xã" });
    const form = el(
      "form",
      { id: "move-form", class: "card", novalidate: "" },
      el("h2", { text: "Chuyển sang phường/xã khác" }),
      el("label", {}, "Phường/xã mới", select),
      button,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const ward = select.value;
      if (!ward) return result("Hãy chọn phường/xã nhận tin báo.", true);
      button.disabled = true;
      result("Đang gửi…");
      try {
        const moved = await api("reports", C.caseUrl(""), { method: "PATCH", body: { ward } });
        const mine = state.me.wards || [];
        if (mine.length && !mine.includes(moved.ward)) {
          // No longer this person's case: back to the queue, with what happened said.
          state.cases.delete(C.caseId(moved));
          C.renderQueue();
          C.notice(`Đã chuyển tin báo ${moved.ref} sang ${C.wardName(moved.ward)}. Tin báo không còn trong hàng đợi của bạn.`);
          location.hash = "#/";
          return;
        }
        state.cases.set(C.caseId(moved), moved);
        C.renderCase(moved);
        result(`Đã chuyển tin báo sang ${C.wardName(moved.ward)}.`);
      } catch (exc) {
        result(exc.message, true);
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  C.hooks.caseRendered.push((item) => {
    // Rebuilt only when what the cards show changes, so a live update does not undo a
    // choice being made in them.
    const key = [C.caseId(item), item.status, item.assignee, item.duplicate_of, item.merged_into, item.ward].join("|");
    if (cache.shown === key && $("dispatch-actions").childElementCount) return;
    cache.shown = key;
    $("dispatch-actions").replaceChildren(...[assignCard(item), mergeCard(item), moveCard(item)].filter(Boolean));
  });
})();
