/**
 * Accuracy on real photos (scripts/accuracy_cases.ts): calibrating on real data keeps what the
 * float nets find, where the `record --calibrate` baseline (random inputs) loses it. The
 * thresholds are those this data holds (README "Accuracy on real data" has every figure).
 */

import assert from "node:assert/strict";
import { CASES, DLIB, loadCase, runCase } from "../scripts/accuracy_cases.ts";
import { modelNames } from "./_models.ts";
import { photosPresent } from "./_photos.ts";

const photos = photosPresent(
  [`${DLIB}/faces/2008_002470.jpg`, `${DLIB}/johns/John_Salley`, `${DLIB}/video_frames`],
  "the accuracy tests on photos",
);

/** The case of `model`, loaded with its data. */
async function caseData(model: string) {
  const entry = CASES.find((candidate) => candidate.model === model)!;
  const loaded = await loadCase(entry);
  return { entry, loaded, data: await entry.samples(loaded.net) };
}

Deno.test(
  "yufacedetect_v1 on photos: IFMR keeps the float net's faces, random calibration loses them",
  {
    ignore: !photos || !modelNames.includes("yufacedetect_v1"),
  },
  async () => {
    const { loaded, data } = await caseData("yufacedetect_v1");
    const faces = (report: Awaited<ReturnType<typeof runCase>>) =>
      report.outputs.find((output) => output.blob === "mbox_conf_flatten")!.nets;
    const ifmr = faces(await runCase(loaded, data, "ifmr"));
    const random = faces(await runCase(loaded, data, "random"));
    const found = ifmr.float.confident!;
    assert.ok(found >= 100, `the float net finds ${found} confident anchors on these photos`);
    for (const net of [ifmr.fakeQuant, ifmr.deploy]) {
      assert.ok(net.confidentKept! >= 0.97 * found, `IFMR keeps ${net.confidentKept}/${found}`);
      assert.ok(net.confidentAgreement! >= 0.95, `IFMR agreement ${net.confidentAgreement}`);
    }
    assert.ok(
      random.deploy.confidentKept! < 0.5 * found,
      `random keeps ${random.deploy.confidentKept}`,
    );
  },
);

Deno.test(
  "mtcnn_onet on face crops: IFMR keeps every face and halves the box error of random calibration",
  {
    ignore: !photos || !modelNames.includes("mtcnn_onet"),
  },
  async () => {
    const { loaded, data } = await caseData("mtcnn_onet");
    const ifmr = await runCase(loaded, data, "ifmr");
    const random = await runCase(loaded, data, "random");
    const output = (report: typeof ifmr, blob: string) =>
      report.outputs.find((candidate) => candidate.blob === blob)!.nets;
    const prob = output(ifmr, "prob1");
    assert.equal(prob.deploy.top1Accuracy, prob.float.top1Accuracy);
    assert.equal(prob.deploy.top1Agreement, 1);
    const boxes = output(ifmr, "conv6-2").deploy.relativeL2;
    const randomBoxes = output(random, "conv6-2").deploy.relativeL2;
    assert.ok(boxes < 0.07, `IFMR box rel L2 ${boxes}`);
    assert.ok(boxes < 0.7 * randomBoxes, `IFMR ${boxes} vs random ${randomBoxes}`);
  },
);

Deno.test(
  "cifar10_quick on photos: real calibration keeps the class decisions, random inputs lose them",
  {
    ignore: !photos || !modelNames.includes("cifar10_quick_v1format"),
  },
  async () => {
    const { loaded, data } = await caseData("cifar10_quick_v1format");
    const agreement = async (method: "ifmr" | "random") =>
      (await runCase(loaded, data, method)).outputs[0].nets.deploy.top1Agreement!;
    const ifmr = await agreement("ifmr");
    const random = await agreement("random");
    assert.ok(ifmr >= 0.95, `IFMR top-1 agreement ${ifmr}`);
    assert.ok(random < 0.5, `random top-1 agreement ${random}`);
  },
);
