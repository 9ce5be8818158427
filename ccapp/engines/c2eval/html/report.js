// The continuation browser of ccapp's HTML report. Model text only ever reaches the page
// through textContent: a continuation holding a script tag is shown as those characters.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("ccapp-data").textContent);
  const PAGE = 100; // rows added per "show more": a run of 80,000 paths stays responsive
  const BADGES = {
    yes: "corrected",
    no: "not corrected",
    unparsed: "unparsed",
    error: "judge error",
    unjudged: "not judged",
  };
  const byK = document.getElementById("filter-k");
  const byJudge = document.getElementById("filter-judge");
  const byVerdict = document.getElementById("filter-verdict");
  const list = document.getElementById("samples");
  const count = document.getElementById("sample-count");
  const more = document.getElementById("show-more");
  let matches = [];
  let shown = 0;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function addOption(select, value, text) {
    const option = element("option", "", text);
    option.value = value;
    select.append(option);
  }

  data.ks.forEach((k) => addOption(byK, String(k), String(k)));
  data.judges.forEach((judge) => addOption(byJudge, judge, judge));
  if (data.judges.length === 0) addOption(byJudge, "", "none");
  if (data.judges.includes(data.primary_judge)) byJudge.value = data.primary_judge;

  function labelOf(row) {
    const verdict = row.verdicts[byJudge.value];
    return verdict ? verdict.label : "unjudged";
  }

  function wanted(row) {
    if (byK.value !== "all" && String(row.k) !== byK.value) return false;
    return byVerdict.value === "all" || labelOf(row) === byVerdict.value;
  }

  // Spans count Unicode code points (Python's str indices), not UTF-16 units.
  function textWithSpan(target, text, span) {
    if (!span) {
      target.append(document.createTextNode(text));
      return;
    }
    const chars = Array.from(text);
    const start = Math.max(0, span[0]);
    const end = Math.min(chars.length, span[1]);
    target.append(document.createTextNode(chars.slice(0, start).join("")));
    target.append(element("mark", "correction", chars.slice(start, end).join("")));
    target.append(document.createTextNode(chars.slice(end).join("")));
  }

  function verdictLine(row) {
    return Object.keys(row.verdicts)
      .sort()
      .map((judge) => {
        const v = row.verdicts[judge];
        const score = v.score === null ? "" : ` (score ${v.score.toFixed(3)})`;
        return `${judge}: ${v.label}${score}`;
      })
      .join(" · ");
  }

  function render(row) {
    const cell = data.cells[`${row.item}:${row.k}`] || { prefill: "", prompt: "" };
    const label = labelOf(row);
    const verdict = row.verdicts[byJudge.value];
    // the app lights the chosen judge's span, else the heuristic's
    const lit = (verdict && verdict.span) || (row.verdicts.heuristic || {}).span || null;
    const article = element("article", "sample");
    article.dataset.k = String(row.k);
    article.dataset.label = label;
    const head = element("div", "sample-head");
    head.append(element("span", "where", `request ${row.item} · k=${row.k} · path ${row.path}`));
    head.append(element("span", `badge ${label}`, BADGES[label] || label));
    if (verdict && verdict.relapse) head.append(element("span", "badge relapse", "relapse"));
    head.append(element("span", "tokens", `${row.new_tokens} new tokens · ${row.finish_reason}`));
    article.append(head);
    article.append(element("p", "request", data.requests[row.item]));
    const body = element("p", "text");
    body.append(element("span", "prefill", cell.prefill));
    textWithSpan(body, row.text, lit);
    article.append(body);
    article.append(element("p", "verdicts", verdictLine(row)));
    const prompt = element("details", "prompt");
    prompt.append(element("summary", "", "exact prompt (what the model saw)"));
    const pre = element("pre");
    prompt.append(pre);
    prompt.addEventListener("toggle", () => {
      if (prompt.open && !pre.textContent) pre.textContent = cell.prompt;
    });
    article.append(prompt);
    return article;
  }

  function showMore() {
    const end = Math.min(matches.length, shown + PAGE);
    const rows = [];
    for (let i = shown; i < end; i += 1) rows.push(render(matches[i]));
    list.append(...rows);
    shown = end;
    const of = `${matches.length} of ${data.rows.length} continuations`;
    count.textContent = shown < matches.length ? `${of}, the first ${shown} shown` : of;
    more.hidden = shown >= matches.length;
  }

  function update() {
    matches = data.rows.filter(wanted);
    shown = 0;
    list.replaceChildren();
    showMore();
  }

  [byK, byJudge, byVerdict].forEach((select) => select.addEventListener("change", update));
  more.addEventListener("click", showMore);
  update();
})();
