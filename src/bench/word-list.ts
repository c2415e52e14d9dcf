// The built-in word list for random prompts when no tokenizer is given: common English words that are each one
// token, after a space, in the Llama-3, Qwen3 and DeepSeek-V3 vocabularies (checked when the list was made).

/** Common words, one token each with a leading space in Llama-3/Qwen3/DeepSeek-V3-style BPE vocabularies. */
export const WORDS: readonly string[] = [
  'the of and to in is that it for was on are as with his they at be this from have or by one had not but what',
  'all were when we there can an your which their said if do will each about how up out them then she many some',
  'so these would other into has more her two like him see time could no make than first been its who now people',
  'my made over did down only way find use may water long little very after words called just where most know',
  'get through back much before go good new write our used me man too any day same right look think also around',
  'another came come work three word must because does part even place well such here take why things help put',
  'years different away again off went old number great tell men say small every found still between name should',
  'home big give air line set own under read last never us left end along while might next sound below saw',
  'something thought both few those always looked show large often together asked house world going want school',
  'important until form food keep children feet land side without boy once animals life enough took sometimes',
  'four head above kind began almost live page got earth need far hand high year mother light parts country',
  'father let night following picture being study second eyes soon times story boys since white days ever paper',
  'hard near sentence better best across during today others however sure means knew try told young miles sun',
  'ways thing whole hear example heard several change answer room sea against top turned learn point city play',
  'toward five using himself usually money seen car morning given body family later order move river open short',
  'question black color friends road free power field town table half wind test true run state friend plan stand',
  'south north east west market music system heart reason rest bring plant plants fire business class',
]
  .join(' ')
  .split(' ');
