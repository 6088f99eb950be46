package demo

// AnswerAll makes every idle phone of the Sim answer its calls: no chance
// busy, no calls left ringing.
func AnswerAll(o Options) Options {
	o.answerAll = true
	return o
}
