// salarymodel web page: fills the form from GET /model, posts the job to
// POST /explain and draws the estimate, its range and the explanation, in the
// chosen currency and period, with the person's own pay marked on the range.
// Plain browser JavaScript, no libraries, nothing loaded from the network.
"use strict";

const $ = (id) => document.getElementById(id);
const formats = {};
// Amounts in whole units as the chosen country writes money: GET /model gives
// each country's CLDR locale tag (currencies.locales, from Babel), so India
// reads ₹12,11,028 and Germany 1.234 €, as the CLI and the report (Babel) write
// them; tests/service/test_money_page.py checks the strings are Babel's. `tag`
// overrides the country's (the test passes it); US English without a country.
function money(code, tag) {
  let locale = tag;
  if (!locale && typeof document !== "undefined") {
    const country = moneyCountry($("country").value);
    locale = country && (currencies.locales || {})[country];
  }
  locale = locale || "en-US";
  const key = `${locale} ${code}`;
  formats[key] = formats[key] || new Intl.NumberFormat(locale, { style: "currency", currency: code, minimumFractionDigits: 0, maximumFractionDigits: 0 });
  return formats[key];
}
const usd = { format: (amount) => money("USD", "en-US").format(amount) };
// Display names of codes, from GET /model's labels (the page words nothing itself).
let labels = { experience_level: {}, company_size: {}, employment_type: {}, remote_ratio: {}, view: {}, period: {} };
let currencies = { supported: ["USD"], rates: {}, by_country: {} };
let currencyChosen = false; // once a person picks a currency, the country no longer changes it
const chosenSkills = new Set();
let vocabulary = { skills: [] };

function option(value, text, selected) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = text;
  element.selected = selected;
  return element;
}

function fillSelect(id, values, names, chosen) {
  const select = $(id);
  const text = (v) => (names && names[v] ? names[v] : String(v));
  select.replaceChildren(...values.map((v) => option(v, text(v), String(v) === String(chosen))));
}

function fillDatalist(id, values) {
  $(id).replaceChildren(...values.map((v) => option(v, "", false)));
}

// Skills: one text box (one tab stop) over a list of the vocabulary's skills.
// The list's options are never tab stops; the box points at the active one
// (aria-activedescendant), so arrow keys and Enter work without leaving it.
let activeSkill = -1;

function skillMatches() {
  const filter = $("skill-search").value.trim().toLowerCase();
  const found = vocabulary.skills.filter((s) => !filter || s.includes(filter));
  // Names that start with the typed text first ("sq": sql before mysql).
  return [...found.filter((s) => s.startsWith(filter)), ...found.filter((s) => !s.startsWith(filter))];
}

function openSkillList(open) {
  $("skill-list").hidden = !open;
  $("skill-search").setAttribute("aria-expanded", String(open));
  if (!open) {
    activeSkill = -1;
    $("skill-search").removeAttribute("aria-activedescendant");
  }
}

function renderSkillList() {
  const matches = skillMatches();
  activeSkill = Math.min(activeSkill, matches.length - 1);
  $("skill-list").replaceChildren(...matches.map((skill, i) => {
    const item = document.createElement("li");
    item.id = `skill-option-${i}`;
    item.setAttribute("role", "option");
    item.setAttribute("aria-selected", String(chosenSkills.has(skill)));
    item.className = i === activeSkill ? "active" : "";
    item.textContent = skill;
    // mousedown, not click: the text box keeps the focus.
    item.addEventListener("mousedown", (event) => {
      event.preventDefault();
      toggleSkill(skill);
    });
    return item;
  }));
  const active = activeSkill >= 0 ? $(`skill-option-${activeSkill}`) : null;
  if (active) {
    $("skill-search").setAttribute("aria-activedescendant", active.id);
    active.scrollIntoView({ block: "nearest" });
  } else {
    $("skill-search").removeAttribute("aria-activedescendant");
  }
}

function toggleSkill(skill) {
  const adding = !chosenSkills.has(skill);
  adding ? chosenSkills.add(skill) : chosenSkills.delete(skill);
  $("skill-status").textContent = `${skill} ${adding ? "added" : "removed"}; ${chosenSkills.size} chosen.`;
  renderChosen();
  renderSkillList();
}

function skillKey(event) {
  const matches = skillMatches();
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    openSkillList(true);
    const step = event.key === "ArrowDown" ? 1 : -1;
    activeSkill = Math.max(0, Math.min(matches.length - 1, activeSkill + step));
    renderSkillList();
  } else if (event.key === "Enter") {
    // Enter picks a skill; it never submits the form from this box.
    event.preventDefault();
    const skill = matches[activeSkill >= 0 ? activeSkill : 0];
    const typed = $("skill-search").value.trim();
    if (skill && (activeSkill >= 0 || typed)) {
      toggleSkill(skill);
      $("skill-search").value = "";
      activeSkill = -1;
      renderSkillList();
    }
  } else if (event.key === "Escape") {
    openSkillList(false);
  } else if (event.key === "Backspace" && !$("skill-search").value && chosenSkills.size) {
    toggleSkill([...chosenSkills].pop());
  }
}

function renderChosen() {
  const chips = [...chosenSkills].map((skill) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    // Not a tab stop (the box is the one stop; Backspace there removes chips).
    chip.tabIndex = -1;
    chip.textContent = skill;
    chip.title = `remove ${skill}`;
    chip.setAttribute("aria-label", `remove ${skill}`);
    chip.addEventListener("click", () => {
      toggleSkill(skill);
      $("skill-search").focus();
    });
    return chip;
  });
  $("chosen-skills").replaceChildren(...chips);
}

async function loadModel() {
  const response = await fetch("/model");
  if (!response.ok) throw new Error(`GET /model answered ${response.status}`);
  const card = await response.json();
  const allowed = card.allowed;
  const defaults = card.defaults;
  vocabulary = card.vocabulary;
  labels = card.labels;
  for (const name of ["experience_level", "company_size", "employment_type", "remote_ratio"]) {
    fillSelect(name, allowed[name], labels[name], defaults[name]);
  }
  fillSelect("view", allowed.view, labels.view, card.default_view);
  fillDatalist("titles", vocabulary.titles);
  fillDatalist("countries", vocabulary.countries.map((c) => c.name));
  // The default country, by name, unless the person typed one while the page loaded.
  if (!$("country").value.trim()) $("country").value = countryName(defaults.country);
  currencies = card.currencies || currencies;
  fillSelect("currency", currencies.supported, null, defaults.currency || "USD");
  fillSelect("period", allowed.period, labels.period, defaults.period);
  preselectCurrency();
  renderSkillList();
  $("model-line").textContent = `model v${card.model_version}` + (card.trained_at ? `, trained ${card.trained_at.slice(0, 10)}` : "");
}

// The country's code, from a code or a name as the vocabulary spells it.
function countryCode(text) {
  const wanted = text.trim().toLowerCase();
  const found = vocabulary.countries.find((c) => c.code.toLowerCase() === wanted || c.name.toLowerCase() === wanted);
  return found ? found.code : null;
}

function countryName(code) {
  if (labels.country && labels.country[code]) return labels.country[code];
  const found = vocabulary.countries.find((c) => c.code === code);
  return found ? found.name : code;
}

// The country's code for its money: from the model's vocabulary, else from every
// country's name GET /model gives with the currencies (China is not in the
// vocabulary: one survey record).
function moneyCountry(text) {
  const known = vocabulary.countries ? countryCode(text) : null;
  if (known) return known;
  const wanted = text.trim().toLowerCase();
  const names = currencies.names || {};
  return Object.keys(names).find((c) => c.toLowerCase() === wanted || names[c].toLowerCase() === wanted) || null;
}

// Preselect the country's own currency (CLDR, via GET /model); one the ECB
// does not quote (Nigeria's NGN) is not offered, and the note says so.
let unoffered = "";
function preselectCurrency() {
  unoffered = "";
  if (!currencyChosen) {
    const code = moneyCountry($("country").value);
    const currency = code && currencies.by_country[code];
    if (currency && currencies.supported.includes(currency)) $("currency").value = currency;
    else if (currency) unoffered = `${currencies.names[code] || code}'s ${currency} is not offered (no ECB reference rate): amounts in ${$("currency").value}. `;
  }
  describeCurrency();
}

function describeCurrency() {
  const code = $("currency").value;
  const rate = currencies.rates[code];
  $("currency-note").textContent = unoffered + (rate
    ? `1 USD = ${rate.per_usd.toFixed(4)} ${code}: the ECB's ${rate.year} average (${rate.records.toLocaleString("en-US")} daily reference rates).`
    : "");
}

// The JSON body POST /explain gets for the form's values (all text, as the
// form holds them): what the form shows, nothing left blank. The selects and
// the country start at GET /model's defaults, so an untouched form sends the
// service's own defaults; year and employer country are not on the form, and
// the service fills them (salarymodel.core.job_defaults) as it does a request or a
// CSV row that leaves them out. Pure: a test runs it on real jobs.
function jobRequest(form) {
  const job = { job_title: String(form.job_title ?? "").trim() };
  for (const name of ["experience_level", "company_size", "employment_type", "view", "currency", "period"]) {
    if (form[name]) job[name] = form[name];
  }
  if (String(form.remote_ratio ?? "") !== "") job.remote_ratio = Number(form.remote_ratio);
  const country = String(form.country ?? "").trim();
  if (country) job.country = country;
  const location = String(form.location ?? "").trim();
  if (location) job.location = location;
  if (form.skills && form.skills.length) job.skills = [...form.skills];
  const salary = String(form.current_salary ?? "").trim();
  // Sent as typed: the service names the field when it is not a plausible salary.
  if (salary) job.current_salary = Number(salary);
  return job;
}

function jobFromForm() {
  const form = { skills: [...chosenSkills] };
  for (const name of ["job_title", "experience_level", "company_size", "employment_type", "view",
    "currency", "period", "remote_ratio", "country", "location", "current_salary"]) form[name] = $(name).value;
  return jobRequest(form);
}

// An error replaces the answer (an old answer under a new question would read
// as the new one's), says what to do, and is scrolled to where the person looks.
function showError(message, field) {
  for (const marked of document.querySelectorAll("[aria-invalid=true]")) marked.removeAttribute("aria-invalid");
  $("form-error").textContent = message;
  $("form-error").hidden = !message;
  if (!message) return;
  $("answer").hidden = true;
  $("answer").classList.remove("stale");
  $("placeholder").hidden = true;
  if (field && $(field)) $(field).setAttribute("aria-invalid", "true");
  $("form-error").scrollIntoView({ block: "nearest" });
}

// The form's own words for a field (its label's text, without the hint).
function fieldName(id) {
  const label = document.querySelector(`label[for="${id}"]`);
  return label ? label.firstChild.textContent.trim() : id;
}

// What the person reads for a refused request: the service's message and the fix.
function refusal(body, status) {
  const detail = (body && body.detail && body.detail[0]) || null;
  const field = detail ? String(detail.field).split(/[.[]/)[0] : null;
  const what = body && body.error ? body.error : `the service answered ${status}`;
  const fix = field && $(field) ? `Correct “${fieldName(field)}”, then press Estimate again.` : "Press Estimate again.";
  return { message: `${what}. ${fix}`, field };
}

function renderRange(result) {
  const low = result.low_usd, high = result.high_usd, estimate = result.estimate_usd;
  const you = result.current_salary ? result.current_salary.usd_per_year : null;
  $("range-you").hidden = you == null || low == null;
  if (low == null || high == null) {
    $("range-band").style.width = "0";
    $("low").textContent = $("high").textContent = $("coverage-line").textContent = "";
    return;
  }
  // The track spans a little beyond the range (and the person's pay) so nothing
  // touches the ends; every mark is placed by the same linear scale.
  const pad = (high - low) * 0.15 || estimate * 0.1;
  const start = Math.max(0, Math.min(low, you ?? low) - pad), end = Math.max(high, you ?? high) + pad;
  const at = (value) => ((value - start) / (end - start)) * 100;
  $("range-band").style.left = `${at(low)}%`;
  $("range-band").style.width = `${at(high) - at(low)}%`;
  $("range-mark").style.left = `calc(${at(estimate)}% - 2px)`;
  if (you != null) $("range-you").style.left = `calc(${at(you)}% - 1.5px)`;
  const local = money(result.amounts.currency);
  $("low").textContent = local.format(result.amounts.low);
  $("high").textContent = local.format(result.amounts.high);
  $("low").dataset.at = at(low);
  $("high").dataset.at = at(high);
  $("coverage-line").textContent =
    `The band, ${local.format(result.amounts.low)} to ${local.format(result.amounts.high)}, holds ${Math.round(result.coverage * 100)}% of similar salaries.`;
  placeRangeLabels();
}

// Each end label is centred under its end of the band, kept inside the track;
// when the two would touch, each sits just outside its end of the band.
function placeRangeLabels() {
  const width = $("range-labels").clientWidth;
  const lowLabel = $("low"), highLabel = $("high");
  if (!width || lowLabel.dataset.at == null) return;
  const lowAt = (Number(lowLabel.dataset.at) / 100) * width, highAt = (Number(highLabel.dataset.at) / 100) * width;
  const inside = (x, w) => Math.max(0, Math.min(width - w, x));
  const lw = lowLabel.offsetWidth, hw = highLabel.offsetWidth, gap = 8;
  let lx = inside(lowAt - lw / 2, lw), hx = inside(highAt - hw / 2, hw);
  // Too close to centre both: each label goes outside its end of the band.
  if (lx + lw + gap > hx) {
    lx = inside(lowAt - lw, lw);
    hx = inside(highAt, hw);
  }
  lowLabel.style.left = `${lx}px`;
  highLabel.style.left = `${hx}px`;
}

function renderAmounts(result) {
  const amounts = result.amounts, code = amounts.currency, rate = amounts.exchange_rate;
  $("estimate").textContent = money(code).format(amounts.estimate);
  $("per").textContent = labels.period[amounts.period];
  const converted = code !== "USD" || amounts.period !== "year";
  $("usd-line").hidden = !converted;
  $("usd-line").textContent = converted ? `≈ ${usd.format(result.estimate_usd)} per year in USD` : "";
  $("rate-line").hidden = code === "USD";
  $("rate-line").textContent = code === "USD" ? "" :
    `Converted at ${rate.per_usd.toFixed(4)} ${code} per USD: ${rate.note}.`;
  const position = result.current_salary;
  $("you-line").hidden = !position;
  $("you-line").textContent = position ?
    `Your pay, ${money(code).format(position.amount)} ${labels.period[amounts.period]}: ${position.reading}.` : "";
}

// The explanation's concepts that are inputs of this form, and the form field each is.
const FIELD_OF_CONCEPT = {
  "job title": "job_title", "experience level": "experience_level", "company size": "company_size",
  "country": "country", "remote ratio": "remote_ratio", "location": "location",
  "employment type": "employment_type", "pay view": "view",
};
const SKILL = "skill: ";

// A contribution's row when it is one of the person's own inputs, in the form's
// words and display names (GET /model's labels and vocabulary), else null.
function ownRow(c, job) {
  if (c.concept.startsWith(SKILL)) {
    return c.value === "listed" ? { name: fieldName("skill-search"), value: c.concept.slice(SKILL.length) } : null;
  }
  const field = FIELD_OF_CONCEPT[c.concept];
  if (!field || (field === "location" && !job.location)) return null;
  let value = c.value;
  if (field === "job_title") value = job.job_title;
  else if (field === "country") value = countryName(c.value);
  else if (labels[field]) value = labels[field][String(job[field] ?? c.value)] || value;
  return { name: fieldName(field), value };
}

function contributionRows(contributions, job) {
  const own = [], rest = [];
  for (const c of contributions) {
    const row = ownRow(c, job);
    row ? own.push({ ...c, ...row }) : rest.push(c);
  }
  if (rest.length) {
    own.push({
      name: "Everything else",
      value: `${rest.length} other model inputs (year, skills not picked, …)`,
      dollars: rest.reduce((sum, c) => sum + c.dollars, 0),
      amount: rest.reduce((sum, c) => sum + c.amount, 0),
      rest: true,
    });
  }
  return own;
}

function renderChart(contributions, local, base, job) {
  const rows = contributionRows(contributions, job);
  const scale = Math.max(1, ...rows.map((c) => Math.abs(c.dollars)));
  $("chart").replaceChildren(...rows.map((c) => {
    const row = document.createElement("div");
    row.className = c.rest ? "bar-row rest" : "bar-row";
    row.setAttribute("role", "listitem");
    const label = document.createElement("div");
    label.className = "bar-label";
    label.textContent = `${c.name}: `;
    const value = document.createElement("span");
    value.className = "bar-input";
    value.textContent = c.value;
    label.append(value);
    const area = document.createElement("div");
    area.className = "bar-area";
    const axis = document.createElement("div");
    axis.className = "bar-axis";
    const bar = document.createElement("div");
    const half = (Math.abs(c.dollars) / scale) * 50; // % of the area on one side of the axis
    bar.className = `bar ${c.dollars >= 0 ? "up" : "down"}`;
    bar.style.width = `${half}%`;
    bar.style.left = c.dollars >= 0 ? "50%" : `${50 - half}%`;
    area.append(axis, bar);
    const text = document.createElement("div");
    text.className = "bar-value";
    const sign = c.amount >= 0 ? "+" : "−";
    // Percent of the average job's pay: equal amounts read as equal percents.
    const percent = base ? Math.abs((c.amount / base) * 100).toFixed(1) : null;
    const amount = document.createElement("span");
    amount.textContent = `${sign}${local.format(Math.abs(c.amount))}`;
    text.append(amount);
    if (percent != null) {
      const share = document.createElement("span");
      share.className = "bar-percent";
      share.textContent = ` ${sign}${percent}% of average pay`;
      text.append(share);
    }
    row.append(label, area, text);
    return row;
  }));
}

function renderResult(result, job) {
  showError("");
  $("placeholder").hidden = true;
  $("answer").hidden = false;
  $("answer").classList.remove("stale");
  renderAmounts(result);
  $("view-line").textContent = `Describes ${labels.view[result.view] || result.view} · model v${result.model_version}`;
  renderRange(result);
  // Said once: with thin support the service's warning (below) gives the count.
  $("support-line").hidden = result.support == null || result.thin_support;
  $("support-line").textContent = $("support-line").hidden ? "" :
    `${result.support.toLocaleString("en-US")} training records share this role family, experience level and country.`;
  // Official US wages for the occupation and place, next to a US estimate.
  const market = result.market_reference; // China: Maimai 2023's pay for the role
  const reference = result.reference ? `Official pay: ${result.reference.text}`
    : market ? `Published pay: ${market.text}` : "";
  $("reference-line").hidden = !reference;
  $("reference-line").textContent = reference;
  // How this kind of job's estimates fared on a year the model had not seen
  // (a group that missed says so among the warnings instead: said once).
  const track = result.track_record;
  $("track-line").hidden = !track || track.warned;
  $("track-line").textContent = track ? track.text : "";
  $("warnings").replaceChildren(...result.warnings.map((w) => {
    const item = document.createElement("li");
    item.textContent = w;
    return item;
  }));
  const local = money(result.amounts.currency);
  $("base").textContent = local.format(result.amounts.base);
  renderChart(result.contributions, local, result.amounts.base, job);
}

async function estimate(event) {
  event.preventDefault();
  const job = jobFromForm();
  if (!job.job_title) {
    showError("Please enter a job title, then press Estimate.", "job_title");
    return;
  }
  // The old answer is greyed while the new one is on its way.
  $("answer").classList.add("stale");
  $("submit").disabled = true;
  try {
    let response;
    try {
      response = await fetch("/explain", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(job),
      });
    } catch (error) {
      showError(`The estimate service did not answer (${error.message}): it may be stopped or restarting. ` +
        "Start it again (salarymodel serve) or wait a moment, then press Estimate again.");
      return;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const { message, field } = refusal(body, response.status);
      showError(message, field);
      return;
    }
    renderResult(body, job);
  } finally {
    $("submit").disabled = false;
  }
}

// (Outside a browser, as in the test of jobRequest, there is no page to wire.)
if (typeof document !== "undefined") {
  $("job-form").addEventListener("submit", estimate);
  $("skill-search").addEventListener("input", () => { activeSkill = -1; openSkillList(true); renderSkillList(); });
  $("skill-search").addEventListener("focus", () => { openSkillList(true); renderSkillList(); });
  $("skill-search").addEventListener("blur", () => openSkillList(false));
  $("skill-search").addEventListener("keydown", skillKey);
  window.addEventListener("resize", placeRangeLabels);
  $("country").addEventListener("input", preselectCurrency);
  $("country").addEventListener("change", preselectCurrency);
  $("currency").addEventListener("change", () => { currencyChosen = true; describeCurrency(); });
  loadModel().catch((error) => showError(`Could not load the model description: ${error.message}`));
}
