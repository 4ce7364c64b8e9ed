/**
 * A small training corpus for the spam tests, written for them: 20 spam messages (prizes,
 * pharmacy, crypto, phishing, advance fees, loans, fake invoices, …) and 20 ham messages of the
 * kind a test inbox gets (sign-ups, resets, one-time codes, receipts, shipping notices, team
 * notifications, a newsletter someone asked for), plus one unseen message of each kind to score.
 * Addresses and links are all under .test.
 */

export interface CorpusMail {
  from: string;
  subject: string;
  text: string;
  html?: string;
  replyTo?: string;
  mailer?: string;
  unsubscribe?: string;
}

export const SPAM: CorpusMail[] = [
  { from: 'Lottery Board <claims@intl-lotto.test>', replyTo: 'agent.mark@freemail.test', mailer: 'PHPMailer 5.2.9', subject: 'CONGRATULATIONS!!! You have WON $1,500,000.00', text: 'Dear Winner,\n\nYour email address has been selected in the International Online Lottery draw and you have WON the sum of $1,500,000.00 USD!!\nTo claim your prize, reply with your full name, address, phone number and a copy of your passport. A processing fee of $250 applies.\n\nClaims Agent Mark Williams' },
  { from: 'Online Pharmacy <sales@rx-discount.test>', mailer: 'PHPMailer 6.0.1', subject: 'Cheap meds without prescription - 80% OFF', text: 'Best prices on V1agra, C1alis and more!!! No prescription needed. Discreet shipping worldwide.\nOrder now and save 80%: https://rx-discount.test/shop?ref=8812\nLimited time offer, buy 2 get 1 FREE!!!' },
  { from: 'Crypto Profits <invest@coin-rocket.test>', subject: 'Turn $250 into $12,000 in 7 days', text: 'Our AI trading robot made investors RICH. Guaranteed returns of 500% per week, no risk!\nDeposit just $250 today and watch your money grow: https://coin-rocket.test/start\nOnly 12 spots left. ACT NOW before the offer expires!!' },
  { from: 'Security Team <security@paypa1-support.test>', replyTo: 'verify@account-check.test', subject: 'Your account has been suspended', text: 'Dear Customer,\n\nWe detected unusual activity and your account has been LIMITED. To restore access you must verify your identity within 24 hours or your account will be permanently closed.\nVerify now: http://192.0.2.44/login/verify.php\n\nThank you, Account Security Department' },
  { from: 'Barrister James Okoro <j.okoro@chambers-law.test>', replyTo: 'jokoro.private@freemail.test', subject: 'URGENT BUSINESS PROPOSAL - STRICTLY CONFIDENTIAL', text: 'Dear Friend,\n\nI am Barrister James Okoro, the personal attorney to a late client who died with his family leaving the sum of $10.5 MILLION USD in a bank. I seek your consent to present you as next of kin so the funds can be transferred to your account. You will receive 40% of the total sum.\nKindly reply with your private telephone number.\n\nGod bless,\nBarrister James Okoro' },
  { from: 'Fast Loans <approved@quickcash-now.test>', mailer: 'PHPMailer 5.2.22', subject: 'You are PRE-APPROVED for a $5,000 loan', text: 'Bad credit? No problem! You are pre-approved for up to $5,000 cash deposited TODAY.\nNo credit check, instant approval. Click here to get your money: https://quickcash-now.test/apply\nRates from 1.9%. Apply in 2 minutes!!' },
  { from: 'Accounts Payable <billing@invoice-center.test>', replyTo: 'payments@freemail.test', subject: 'Overdue invoice #INV-88213 - final notice', text: 'Hello,\n\nPlease find attached the overdue invoice. Payment of $3,480.00 must be made by wire transfer today to avoid legal action.\nOpen the invoice here: http://invoice-center.test/download/INV-88213.zip\n\nRegards, Accounts Department' },
  { from: 'Slim Fast Pro <offers@slim-pills.test>', subject: 'Lose 30 lbs in 30 days - doctors HATE this trick', text: 'This one weird trick melts belly fat while you sleep!!! Thousands of women lost 30 pounds in 30 days.\nGet your FREE trial bottle now, just pay $4.95 shipping: https://slim-pills.test/trial\nOffer ends at midnight!' },
  { from: 'Luxury Replicas <store@watch-deals.test>', mailer: 'PHPMailer 5.2.9', subject: 'Rolex, Omega, Cartier replicas from $99', text: 'Swiss quality replica watches at 90% OFF. Rolex from $99, Omega from $89.\nFree worldwide shipping, 100% satisfaction guaranteed.\nVisit https://watch-deals.test now, stock is LIMITED!!' },
  { from: 'Home Jobs <jobs@easy-income.test>', subject: 'Earn $500 a day working from home', text: 'Make $500 per day from home with just your computer! No experience needed.\nThousands of people are already earning. Start today and be your own boss: https://easy-income.test/join\nSpaces are limited, register NOW!!' },
  { from: 'Mrs. Helen Carter <helen.carter@charity-aid.test>', replyTo: 'helencarter77@freemail.test', subject: 'Donation of $4,800,000 to you', text: 'Dearest One,\n\nI am a widow suffering from cancer and I have decided to donate my inheritance of $4,800,000 USD to you for charity work. Please reply urgently with your details so my bank can release the funds to you.\n\nRemain blessed,\nMrs. Helen Carter' },
  { from: 'Delivery Service <noreply@parcel-track-info.test>', subject: 'Your package is on hold - customs fee required', text: 'Your parcel could not be delivered because a customs fee of $2.99 is unpaid.\nPay the fee within 48 hours or the package will be returned: http://parcel-track-info.test/pay?id=77812\nDelivery Service' },
  { from: 'Windows Support <alert@pc-protect.test>', subject: 'WARNING: Your computer is infected with 5 viruses', text: 'Our scan has detected 5 VIRUSES on your computer! Your personal data and bank details are at risk.\nCall our certified technicians now at +1-888-555-0199 or download the cleaner: https://pc-protect.test/clean\nDo NOT turn off your computer!!' },
  { from: 'Lucky Casino <bonus@spin-win.test>', mailer: 'PHPMailer 6.0.1', subject: 'Your 200 FREE spins and $1000 bonus are waiting', text: 'Welcome bonus: 200 FREE spins + 100% deposit match up to $1000!!!\nJackpots worth millions every day. Claim your bonus now: https://spin-win.test/claim\nPlay now, win BIG!' },
  { from: 'Rewards Center <rewards@survey-gifts.test>', subject: 'You have been selected: claim your $500 gift card', text: 'Congratulations! You have been selected to receive a $500 gift card.\nComplete a short 30 second survey to claim your reward: https://survey-gifts.test/claim?u=99\nThis offer expires today. Claim now!' },
  { from: 'Vehicle Services <notice@auto-warranty.test>', subject: 'Final notice: your car warranty is about to expire', text: 'This is your FINAL NOTICE. Our records show your vehicle warranty is about to expire.\nCall now to extend your coverage and save up to 60%: 1-800-555-0147\nAct now before it is too late!' },
  { from: 'Stock Alert <tips@penny-picks.test>', subject: 'This stock will EXPLODE 1000% next week', text: 'URGENT stock alert!!! Our analysts found a hidden gem trading at $0.12 that is set to explode 1000%.\nBuy before Monday and get rich: https://penny-picks.test/alert\nDon\'t miss out on the opportunity of a lifetime!' },
  { from: 'Hot Singles <meet@date-local.test>', mailer: 'PHPMailer 5.2.22', subject: 'Lonely singles in your area want to meet you', text: 'Hundreds of attractive singles near you are waiting to chat tonight!\nCreate your FREE profile now: https://date-local.test/join\nNo credit card required. 100% free!' },
  { from: 'SEO Expert <rank@top-seo-agency.test>', replyTo: 'seo.expert.raj@freemail.test', subject: 'Get your website on the first page of Google', text: 'Hello Sir/Madam,\n\nI noticed your website is not ranking on the first page of Google. We guarantee TOP 10 rankings in 30 days for only $99 per month.\nReply for a FREE website audit and price list.\n\nBest regards, SEO Expert' },
  { from: 'Mail Administrator <admin@mailbox-quota.test>', subject: 'Your mailbox is full - upgrade now to avoid losing emails', text: 'Your mailbox has exceeded its storage limit of 2GB. You will not be able to send or receive new emails.\nClick here to upgrade your mailbox for free: http://mailbox-quota.test/upgrade\nFailure to upgrade within 24 hours will result in account deactivation.' },
];

export const HAM: CorpusMail[] = [
  { from: 'Acme <no-reply@acme.test>', subject: 'Confirm your email address', text: 'Hi Sam,\n\nThanks for signing up for Acme. Please confirm your email address by clicking the link below:\nhttps://app.acme.test/confirm?token=3f9c1e\n\nIf you did not create an account, you can ignore this email.\n\nThe Acme team' },
  { from: 'Acme <no-reply@acme.test>', subject: 'Reset your password', text: 'Hi Sam,\n\nWe received a request to reset the password for your Acme account. Use the link below to choose a new one. The link expires in 1 hour.\nhttps://app.acme.test/reset?token=9ab31f\n\nIf you did not ask for this, no action is needed.' },
  { from: 'Shopfront <security@shopfront.test>', subject: 'Your verification code', text: 'Your Shopfront verification code is 482913.\n\nEnter it on the sign-in page to continue. The code is valid for 10 minutes. Never share it with anyone.' },
  { from: 'Coffee Co <receipts@coffee.test>', subject: 'Your receipt from Coffee Co', text: 'Thanks for your order.\n\nOrder 100234, 3 December\n1 x Latte 4.50\n1 x Croissant 3.25\nTotal 7.75\nPaid with card ending 4242.\n\nSee you again soon.' },
  { from: 'Parcel Post <updates@parcelpost.test>', subject: 'Your parcel is on its way', text: 'Good news: your parcel from Bookshop has been shipped.\nTracking number: PP123456789\nEstimated delivery: Friday.\nTrack it at https://parcelpost.test/track/PP123456789' },
  { from: 'Git Forge <notifications@forge.test>', subject: '[acme/api] Fix retry logic in the webhook sender (#412)', text: 'alice requested your review on this pull request.\n\nThe webhook sender now backs off exponentially and keeps the delivery log.\n\nView it on Git Forge: https://forge.test/acme/api/pull/412\nYou are receiving this because your review was requested.', unsubscribe: '<https://forge.test/notifications/unsubscribe/412>' },
  { from: 'Calendar <calendar@acme.test>', subject: 'Invitation: Sprint planning, Thursday 10:00', text: 'Alice invited you to Sprint planning.\nWhen: Thursday 10:00 - 11:00\nWhere: Meeting room 2 or the video link in the invitation\nAgenda: review the backlog and pick the next stories.' },
  { from: 'Weekly Digest <digest@devnews.test>', subject: 'This week in web development', text: 'Hello,\n\nThis week: a look at the new CSS features, how we cut our build times in half, and a tutorial on testing email flows.\nRead the articles: https://devnews.test/issues/142\n\nYou subscribed to the weekly digest. Manage your subscription in your settings.', unsubscribe: '<https://devnews.test/unsubscribe?u=77>' },
  { from: 'Bob Smith <bob@partner.test>', subject: 'Re: notes from yesterday', text: 'Hi Alice,\n\nThanks for the notes. I have added my comments to the document and moved the review to next week, as we discussed.\nLet me know if the new timeline works for your team.\n\nCheers,\nBob' },
  { from: 'Cloud Host <billing@cloudhost.test>', subject: 'Your invoice for November', text: 'Hello,\n\nYour invoice for November is ready. The amount will be charged to the card on file on 5 December.\nView the invoice in your account: https://console.cloudhost.test/billing\n\nThank you for using Cloud Host.' },
  { from: 'Acme <no-reply@acme.test>', subject: 'Welcome to Acme, Sam', text: 'Welcome aboard!\n\nYour account is ready. Here are a few things to try first: create a project, invite your team, and connect your repository.\nGet started: https://app.acme.test/getting-started\n\nThe Acme team' },
  { from: 'Shopfront <orders@shopfront.test>', subject: 'Order confirmation #SF-20931', text: 'Thank you for your order.\n\nOrder SF-20931\n2 x Notebook\n1 x Pen set\nWe will let you know when it ships. You can view your order at https://shopfront.test/orders/SF-20931' },
  { from: 'Acme Security <security@acme.test>', subject: 'New sign-in to your account', text: 'We noticed a new sign-in to your Acme account from Firefox on Linux.\nIf this was you, there is nothing to do. If not, change your password in your account settings and review your active sessions.' },
  { from: 'CI Service <builds@ci.test>', subject: 'Build failed: acme/api main #1182', text: 'The build of acme/api on main failed.\nFailed step: test (node 20)\n3 tests failed in test/webhooks.test.ts.\nSee the log: https://ci.test/acme/api/builds/1182' },
  { from: 'Team Chat <notify@chat.test>', subject: 'You have 3 unread messages in #release', text: 'While you were away:\nalice: the release notes are ready for review\nbob: I have tagged the release candidate\ncarol: staging looks good to me\nOpen the channel: https://chat.test/acme/release' },
  { from: 'Library <loans@library.test>', subject: 'Reminder: your loan is due on Monday', text: 'Dear reader,\n\nThe book "Designing Data-Intensive Applications" is due back on Monday. You can renew it online once.\nRenew: https://library.test/account/loans\n\nYour library' },
  { from: 'Acme <no-reply@acme.test>', subject: 'Your login code', text: 'Use the code 730914 to sign in to Acme. It expires in 5 minutes.\nIf you did not try to sign in, you can ignore this message.' },
  { from: 'Support <support@cloudhost.test>', subject: 'Re: [Ticket 5521] Cannot attach a volume', text: 'Hello Sam,\n\nThanks for the details. The volume was stuck in a detaching state; we have cleared it and you should now be able to attach it to your server.\nPlease reply to this email if the problem comes back.\n\nKind regards,\nSupport team' },
  { from: 'Forms <forms@survey.test>', subject: 'New response to "Team offsite"', text: 'Your form "Team offsite" received a new response.\nName: Carol\nPreferred date: 14 March\nDietary needs: vegetarian\nView all responses: https://survey.test/forms/offsite/responses', unsubscribe: '<mailto:unsubscribe@survey.test>' },
  { from: 'HR <hr@acme.test>', subject: 'Holiday schedule for December', text: 'Hi all,\n\nThe office is closed from 24 December to 1 January. Please record your leave in the HR portal before the 15th, and make sure someone on your team covers support.\n\nThanks,\nHR' },
];

/** Unseen by training: one message of each kind. */
export const SPAMMY: CorpusMail = { from: 'Prize Department <winner@mega-prize.test>', replyTo: 'claims.office@freemail.test', mailer: 'PHPMailer 5.2.9', subject: 'CONGRATULATIONS! Claim your $1000 gift card NOW', text: 'You have been selected as our lucky WINNER!!! Claim your $1000 gift card and FREE bonus today.\nThis offer expires in 24 hours, act now: https://mega-prize.test/claim\nNo purchase necessary!!' };
export const HAMMY: CorpusMail = { from: 'Acme <no-reply@acme.test>', subject: 'Confirm your new email address', text: 'Hi Sam,\n\nPlease confirm the new email address for your Acme account by clicking the link below. The link expires in 1 hour.\nhttps://app.acme.test/confirm?token=77c0aa\n\nIf you did not ask for this, you can ignore this email.\n\nThe Acme team' };

/** The message as an RFC 5322 file, CRLF line ends; `n` makes its Message-ID unique. */
export function toEml(mail: CorpusMail, n: number, to = 'sam@inbox.test'): string {
  const domain = mail.from.replace(/.*@/, '').replace(/>.*/, '');
  const headers = [
    `From: ${mail.from}`,
    `To: ${to}`,
    `Subject: ${mail.subject}`,
    `Date: Thu, 04 Dec 2026 10:${String(n % 60).padStart(2, '0')}:00 +0000`,
    `Message-ID: <${n}.${Date.now()}@${domain}>`,
    ...(mail.replyTo ? [`Reply-To: ${mail.replyTo}`] : []),
    ...(mail.mailer ? [`X-Mailer: ${mail.mailer}`] : []),
    ...(mail.unsubscribe ? [`List-Unsubscribe: ${mail.unsubscribe}`] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ];
  return `${headers.join('\r\n')}\r\n\r\n${mail.text.replace(/\r?\n/g, '\r\n')}\r\n`;
}

/** Messages as an mbox file (mboxrd: body lines starting with "From " quoted with ">"). */
export function toMbox(mails: readonly CorpusMail[]): string {
  return mails
    .map((m, i) => {
      const sender = m.from.replace(/.*</, '').replace(/>.*/, '');
      const body = toEml(m, i).replace(/\r\n/g, '\n').replace(/^(>*From )/gm, '>$1');
      return `From ${sender} Thu Dec  4 10:00:00 2026\n${body}\n`;
    })
    .join('');
}
