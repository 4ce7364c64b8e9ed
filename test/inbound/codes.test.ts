/**
 * One-time codes (lib/inbound/parse/codes.ts) on a corpus of realistic mail: sign-ups, logins,
 * resets and OTPs in several languages must give their code; receipts, newsletters, shipping
 * notices and meeting invitations full of years, dates, times, prices, phone numbers and order
 * numbers must give none (or only the real code among them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findCodes } from '../../lib/inbound/parse/codes.js';

interface Sample {
  name: string;
  subject: string;
  text: string;
  codes: string[];
}

const CORPUS: Sample[] = [
  { name: 'plain OTP', subject: 'Your verification code', text: 'Hi Sam,\n\nYour code is 482913.\n\nIt expires in 10 minutes.', codes: ['482913'] },
  { name: 'code in the subject', subject: '731204 is your Acme login code', text: 'Use the code in the subject to sign in. Sent on Dec 3, 2026 at 10:42.', codes: ['731204'] },
  { name: 'grouped digits', subject: 'Sign in to Shop', text: 'Enter this code to sign in: 482 913\nDidn\'t ask for it? Call us at +1 415 555 0132.', codes: ['482913'] },
  { name: 'dashed digits', subject: 'Security code', text: 'Your security code: 123-456', codes: ['123456'] },
  { name: 'alphanumeric', subject: 'Confirm your email', text: 'Your confirmation code is K7Q2X9. Enter it on the sign-up page.', codes: ['K7Q2X9'] },
  { name: 'PIN', subject: 'New device', text: 'Your PIN: 8841\nIf this was not you, reset your password.', codes: ['8841'] },
  { name: 'two-factor with a date and time', subject: 'Login attempt', text: 'On 03/12/2026 at 14:05 someone signed in. Two-factor code: 590112. Order #883311 ships soon.', codes: ['590112'] },
  { name: 'HTML made text', subject: 'Welcome', text: 'VERIFY YOUR ACCOUNT\n\n 204 881 \n\nThis verification code is valid for 15 minutes.', codes: ['204881'] },
  { name: 'Spanish', subject: 'Tu código de verificación', text: 'Hola, tu código es 551903. No lo compartas con nadie.', codes: ['551903'] },
  { name: 'Portuguese', subject: 'Código de acesso', text: 'Seu código de acesso: 774120', codes: ['774120'] },
  { name: 'German', subject: 'Ihr Bestätigungscode', text: 'Ihr Bestätigungscode lautet 320987. Er ist 10 Minuten gültig (bis 14:30 Uhr).', codes: ['320987'] },
  { name: 'French', subject: 'Code de vérification', text: 'Votre code de vérification est : 118822. Prix de l’abonnement : 9,99 €.', codes: ['118822'] },
  { name: 'Russian', subject: 'Код подтверждения', text: 'Ваш код подтверждения: 640215', codes: ['640215'] },
  { name: 'Chinese', subject: '验证码', text: '您的验证码是 839201，5分钟内有效。', codes: ['839201'] },
  { name: 'Japanese', subject: '認証コードのお知らせ', text: '認証コード: 305117 (有効期限 10分)', codes: ['305117'] },
  { name: 'code after the number', subject: 'Acme', text: '9021 is your one-time passcode for Acme.', codes: ['9021'] },
  { name: 'token in a link is not a code', subject: 'Reset your password', text: 'Reset it at https://app.test/reset?token=A1B2C3D4E5 within 2 hours.', codes: [] },
  { name: 'receipt', subject: 'Your receipt from Coffee Co', text: 'Order #100234 on 2026-12-03\nLatte $4.50\nTotal: $12.75\nCard ending 4242\nQuestions? Call (415) 555-0100.', codes: [] },
  { name: 'newsletter', subject: 'The 2026 roundup', text: 'In 2026 we shipped 14 releases. Join our webinar on December 12, 2026 at 16:00 CET. Tickets from €199.', codes: [] },
  { name: 'shipping', subject: 'Your parcel is on its way', text: 'Tracking number 1Z999AA10123456784. Estimated delivery: Friday, 5 Dec. Invoice no. 55012.', codes: [] },
  { name: 'meeting', subject: 'Invitation: Planning @ Thu Dec 4, 2026 10am - 11am', text: 'Join by phone: +44 20 7946 0958, PIN: 112233#\nMeeting ID 8472 9931 002', codes: [] },
  { name: 'account number near "code"', subject: 'Promo', text: 'Use promo code SPRING at checkout. Account no. 48291733.', codes: [] },
];

test('the corpus: every code found, nothing else', () => {
  const wrong: string[] = [];
  for (const s of CORPUS) {
    const got = findCodes(s.subject, s.text);
    if (JSON.stringify(got) !== JSON.stringify(s.codes)) wrong.push(`${s.name}: expected ${JSON.stringify(s.codes)}, got ${JSON.stringify(got)}`);
  }
  assert.deepEqual(wrong, []);
});

test('an OTP-Token header comes first; codes are kept once, in order', () => {
  assert.deepEqual(findCodes('Code 111222', 'Your code is 111222 or 333444', '999000'), ['999000', '111222', '333444']);
  assert.deepEqual(findCodes('', ''), []);
  assert.deepEqual(findCodes('Hello', 'No keyword here: 482913'), []);
});
