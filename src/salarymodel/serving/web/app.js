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
const TOP_CONTRIBUTIONS = 10;
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

function renderSkillList() {
  const filter = $("skill-search").value.trim().toLowerCase();
  const items = vocabulary.skills
    .filter((s) => !filter || s.includes(filter))
    .map((skill) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = skill;
      box.checked = chosenSkills.has(skill);
      box.addEventListener("change", () => {
        box.checked ? chosenSkills.add(skill) : chosenSkills.delete(skill);
        renderChosen();
      });
      label.append(box, skill);
      return label;
    });
  $("skill-list").replaceChildren(...items);
}

function renderChosen() {
  const chips = [...chosenSkills].sort().map((skill) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    chip.textContent = skill;
    chip.title = `remove ${skill}`;
    chip.addEventListener("click", () => {
      chosenSkills.delete(skill);
      renderChosen();
      renderSkillList();
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

function showError(message) {
  $("form-error").textContent = message;
  $("form-error").hidden = !message;
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
  // The track spans a little beyond the range (and the person's pay) so nothing touches the ends.
  const pad = (high - low) * 0.15 || estimate * 0.1;
  const start = Math.max(0, Math.min(low, you ?? low) - pad), end = Math.max(high, you ?? high) + pad;
  const at = (value) => `${((value - start) / (end - start)) * 100}%`;
  $("range-band").style.left = at(low);
  $("range-band").style.width = `calc(${at(high)} - ${at(low)})`;
  $("range-mark").style.left = `calc(${at(estimate)} - 2px)`;
  if (you != null) $("range-you").style.left = `calc(${at(you)} - 1px)`;
  const local = money(result.amounts.currency);
  $("low").textContent = local.format(result.amounts.low);
  $("high").textContent = local.format(result.amounts.high);
  $("coverage-line").textContent = `${Math.round(result.coverage * 100)}% of similar salaries`;
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

function contributionRows(contributions) {
  const top = contributions.slice(0, TOP_CONTRIBUTIONS);
  const rest = contributions.slice(TOP_CONTRIBUTIONS);
  if (rest.length) {
    const dollars = rest.reduce((sum, c) => sum + c.dollars, 0);
    const amount = rest.reduce((sum, c) => sum + c.amount, 0);
    top.push({ concept: `${rest.length} other inputs`, value: "", dollars, amount, percent: null });
  }
  return top;
}

function renderChart(contributions, local) {
  const rows = contributionRows(contributions);
  const scale = Math.max(1, ...rows.map((c) => Math.abs(c.dollars)));
  $("chart").replaceChildren(...rows.map((c) => {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.setAttribute("role", "listitem");
    const label = document.createElement("div");
    label.className = "bar-label";
    label.textContent = c.concept + " ";
    if (c.value) {
      const value = document.createElement("small");
      value.textContent = c.value;
      label.append(value);
    }
    label.title = `${c.concept}: ${c.value}`;
    const area = document.createElement("div");
    area.className = "bar-area";
    const axis = document.createElement("div");
    axis.className = "bar-axis";
    const bar = document.createElement("div");
    const half = (Math.abs(c.dollars) / scale) * 38; // % of the area on one side; room for the label
    bar.className = `bar ${c.dollars >= 0 ? "up" : "down"}`;
    bar.style.width = `${half}%`;
    bar.style.left = c.dollars >= 0 ? "50%" : `${50 - half}%`;
    const text = document.createElement("span");
    text.className = "bar-value";
    const sign = c.dollars >= 0 ? "+" : "−";
    text.textContent = `${sign}${local.format(Math.abs(c.amount))}` + (c.percent == null ? "" : ` (${sign}${Math.abs(c.percent).toFixed(1)}%)`);
    if (c.dollars >= 0) text.style.left = `calc(${50 + half}% + 4px)`;
    else text.style.right = `calc(${50 + half}% + 4px)`;
    area.append(axis, bar, text);
    row.append(label, area);
    return row;
  }));
}

function renderResult(result) {
  $("placeholder").hidden = true;
  $("answer").hidden = false;
  renderAmounts(result);
  $("view-line").textContent = `Describes ${labels.view[result.view] || result.view} · model v${result.model_version}`;
  renderRange(result);
  $("support-line").textContent = result.support == null ? "" :
    `${result.support.toLocaleString("en-US")} training records share this role family, experience level and country` +
    (result.thin_support ? " (thin support: treat the range with care)." : ".");
  // Official US wages for the occupation and place, next to a US estimate.
  const market = result.market_reference; // China: Maimai 2023's pay for the role
  const reference = result.reference ? `Official pay: ${result.reference.text}`
    : market ? `Published pay: ${market.text}` : "";
  $("reference-line").hidden = !reference;
  $("reference-line").textContent = reference;
  $("warnings").replaceChildren(...result.warnings.map((w) => {
    const item = document.createElement("li");
    item.textContent = w;
    return item;
  }));
  const local = money(result.amounts.currency);
  $("base").textContent = local.format(result.amounts.base);
  renderChart(result.contributions, local);
}

async function estimate(event) {
  event.preventDefault();
  const job = jobFromForm();
  if (!job.job_title) {
    showError("Please enter a job title.");
    return;
  }
  showError("");
  $("submit").disabled = true;
  try {
    const response = await fetch("/explain", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(job),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `the service answered ${response.status}`);
    renderResult(body);
  } catch (error) {
    showError(error.message);
  } finally {
    $("submit").disabled = false;
  }
}

// (Outside a browser, as in the test of jobRequest, there is no page to wire.)
if (typeof document !== "undefined") {
  $("job-form").addEventListener("submit", estimate);
  $("skill-search").addEventListener("input", renderSkillList);
  $("country").addEventListener("input", preselectCurrency);
  $("country").addEventListener("change", preselectCurrency);
  $("currency").addEventListener("change", () => { currencyChosen = true; describeCurrency(); });
  loadModel().catch((error) => showError(`Could not load the model description: ${error.message}`));
}
