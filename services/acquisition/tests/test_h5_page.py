"""The H5 landing page in a real browser (headless Chromium): rendered from the form schema,
validated in the browser and by the server, a thank-you state, a lead behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from nats.aio.client import Client
from playwright.async_api import Browser, BrowserContext, Page, expect

from acquisition_helpers import WECHAT_UA, Env, phone
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.events.v1 import acquisition_events_pb2 as ev
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


@pytest_asyncio.fixture(loop_scope="session")
async def phone_browser(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A phone-sized browser inside WeChat, as a person who scanned a poster holds it."""
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, user_agent=WECHAT_UA
    )
    yield context
    await context.close()


async def _open(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    page = await context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    answer = await page.goto(url)
    assert answer is not None and answer.status == 200, answer and await answer.text()
    return page, requested


async def _captured(nc: Client, env: Env) -> list[ev.LeadCaptured]:
    found = await read_events(
        nc, "ACQUISITION", "closedloop.acquisition.lead.captured", tenant_id=env.tenant
    )
    return [unpack(e, ev.LeadCaptured) for e in found]


async def test_a_person_fills_the_page_in_a_browser_and_becomes_a_lead(
    env: Env, phone_browser: BrowserContext, nats_client: Client
) -> None:
    campaign = await env.campaign()
    channel = await env.channel(campaign.campaign_id, kind=pb.CHANNEL_KIND_OFFLINE)
    landing = await env.page(campaign.campaign_id)
    url = (
        f"{env.acquisition.http_url}/p/{landing.page_id}"
        f"?channel_id={channel.channel_id}&utm_source=poster"
    )
    page, requested = await _open(phone_browser, url)

    await expect(page).to_have_title("Free trial")
    await expect(page.get_by_role("heading", name="Free trial")).to_be_visible()
    await expect(page.get_by_text("I agree to be contacted about the trial.")).to_be_visible()
    assert await page.get_by_label("phone").get_attribute("type") == "tel"

    # Nothing filled in: the browser says what is missing and sends nothing.
    await page.get_by_role("button", name="Submit").click()
    await expect(page.locator("#f-name-err")).to_have_text("Please fill this in.")
    await expect(page.locator("#f-agree-err")).to_have_text("Please agree to continue.")
    assert not any("/submissions" in u for u in requested)

    # A number the browser lets through but identity refuses: the server's reason, on the field.
    await page.get_by_label("name").fill("Han Meimei")
    await page.get_by_label("phone").fill("12345")
    await page.get_by_label("I agree to be contacted about the trial.").check()
    await page.get_by_role("button", name="Submit").click()
    await expect(page.locator("#f-phone-err")).to_be_visible()
    await expect(page.locator("#f-name-err")).to_be_hidden()
    assert not (await env.stats(channel.channel_id)).leads

    await page.get_by_label("phone").fill("13700137000")
    await page.get_by_role("button", name="Submit").click()
    await expect(page.get_by_text("Thank you! We have received your details.")).to_be_visible()
    await expect(page.locator("#lead-form")).to_be_hidden()

    # The page loaded nothing from anywhere else.
    assert requested and all(u.startswith(env.acquisition.http_url) for u in requested)

    async def one_lead() -> list[ev.LeadCaptured]:
        return await _captured(nats_client, env)

    await eventually(one_lead)
    (event,) = await _captured(nats_client, env)
    lead = (
        await env.stub.GetLead(pb.GetLeadRequest(tenant_id=env.tenant, lead_id=event.lead_id))
    ).lead
    assert lead.values["name"] == "Han Meimei" and lead.values["agree"] == "true"
    assert lead.channel_id == channel.channel_id
    assert lead.attribution.parameters["utm_source"] == "poster"
    assert lead.consent_wording == "I agree to be contacted about the trial."
    customer = await env.customer_of(phone("+8613700137000"))
    assert customer is not None and customer.customer_id == lead.customer_id

    # The same person again: the page says the details were updated, still one lead.
    again, _ = await _open(phone_browser, url)
    await again.get_by_label("name").fill("Han Meimei")
    await again.get_by_label("phone").fill("13700137000")
    await again.get_by_label("I agree to be contacted about the trial.").check()
    await again.get_by_role("button", name="Submit").click()
    await expect(again.get_by_text("We already had your details")).to_be_visible()
    stats = await env.stats(channel.channel_id)
    assert (stats.leads, stats.repeat_submissions) == (1, 1)


async def test_what_a_tenant_or_a_link_writes_is_shown_as_text_never_run(
    env: Env, phone_browser: BrowserContext
) -> None:
    campaign = await env.campaign()
    hostile = '</title><script>alert("title")</script>'
    answer = await env.stub.CreateLandingPage(
        pb.CreateLandingPageRequest(
            tenant_id=env.tenant,
            campaign_id=campaign.campaign_id,
            title=hostile,
            fields=[
                pb.FormField(
                    name="who", type=pb.FIELD_TYPE_TEXT, label='"><img src=x onerror=alert(1)>'
                ),
                pb.FormField(name="phone", type=pb.FIELD_TYPE_PHONE, required=True),
            ],
        )
    )
    landing = answer.page
    dialogs: list[str] = []
    url = (
        f"{env.acquisition.http_url}/p/{landing.page_id}"
        "?ref=%3C/script%3E%3Cscript%3Ealert(2)%3C/script%3E&utm_x=%22%3E%3Cb%3E"
    )
    page = await phone_browser.new_page()
    page.on("dialog", lambda d: dialogs.append(d.message))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    await page.goto(url)
    await expect(page).to_have_title(hostile)
    await expect(page.get_by_role("heading")).to_have_text(hostile)
    await expect(page.get_by_text('"><img src=x onerror=alert(1)>')).to_be_visible()
    assert await page.locator("img").count() == 0
    # The link's parameters reach the submission as data (and come back as its error).
    await page.get_by_label("phone").fill("13600136000")
    await page.get_by_role("button", name="Submit").click()
    await expect(page.get_by_text("Thank you!")).to_be_visible()
    assert dialogs == []
    assert all(u.startswith(env.acquisition.http_url) for u in requested)


async def test_an_unknown_page_is_a_404_page(env: Env) -> None:
    async with env.http() as http:
        for path in ("/p/01NOPAGE0000000000000000000", "/p/%3Cscript%3E", "/p/" + "x" * 300):
            answer = await http.get(path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"].startswith("text/html")
            assert "Page not found" in answer.text
            assert "<script>" not in answer.text


async def test_the_page_is_served_with_a_strict_content_security_policy(env: Env) -> None:
    campaign = await env.campaign()
    landing = await env.page(campaign.campaign_id)
    async with env.http() as http:
        answer = await http.get(f"/p/{landing.page_id}")
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert answer.headers["cache-control"] == "no-store"
    assert "http://" not in answer.text and "https://" not in answer.text
